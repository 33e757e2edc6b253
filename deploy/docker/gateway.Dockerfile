# syntax=docker/dockerfile:1
# The gateway: nginx with the platform's routing (deploy/gateway/nginx.conf.j2, rendered for
# containers by deploy/docker/render_gateway.py) and the built web client. Build context: the root.
#   docker build -f deploy/docker/gateway.Dockerfile -t onex/gateway:1.0.0 .
FROM node:22-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./
RUN npm run build

FROM python:3.11-slim-bookworm AS config
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install "jinja2==3.1.6"
WORKDIR /src
COPY deploy/__init__.py ./deploy/__init__.py
COPY deploy/gateway ./deploy/gateway
COPY deploy/docker/__init__.py deploy/docker/render_gateway.py ./deploy/docker/
RUN python -m deploy.docker.render_gateway /out

FROM nginx:1.27-alpine AS runtime
LABEL org.opencontainers.image.title="onex-gateway" \
      org.opencontainers.image.description="1+X pilot platform gateway and web client"
COPY --from=config /out/nginx.conf /etc/onex-gateway/nginx.conf
COPY --from=config /out/html /usr/share/onex-gateway/html
COPY --from=web /web/dist /usr/share/onex-gateway/web
# Logs to the container's streams; the prefix (pid, temp files) is the only writable directory.
RUN mkdir -p /var/log/onex-gateway /var/cache/onex-gateway/tmp \
    && ln -sf /dev/stdout /var/log/onex-gateway/gateway-access.log \
    && ln -sf /dev/stderr /var/log/onex-gateway/gateway-error.log \
    && chown -R 10101:10101 /var/cache/onex-gateway
COPY --chmod=0755 deploy/docker/gateway-entrypoint.sh /usr/local/bin/onex-gateway
# A high uid of its own (not nginx's 101), as in the Kubernetes pod's securityContext.
USER 10101:10101
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/onex-gateway"]
