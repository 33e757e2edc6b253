#!/bin/sh
# Start nginx in the foreground. The prefix may be an empty volume (Kubernetes mounts an emptyDir
# there under a read-only root filesystem), so its temp directories are made first.
set -eu
PREFIX=/var/cache/onex-gateway
for dir in client_body proxy fastcgi uwsgi scgi; do
    mkdir -p "$PREFIX/tmp/$dir"
done
exec nginx -p "$PREFIX" -c /etc/onex-gateway/nginx.conf -e stderr
