# syntax=docker/dockerfile:1
# One image for the five services (build context: the repository root):
#   docker build -f deploy/docker/service.Dockerfile -t onex/service:1.0.0 .
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=identity -t onex/identity:1.0.0 .
# The container runs `serve $ONEX_SERVICE` unless told otherwise (`serve NAME`, `migrate NAME`,
# `seed-demo`): see deploy/docker/entrypoint.py.
FROM python:3.11-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install "uv==0.13.9"
WORKDIR /app
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY shared ./shared
COPY services ./services
COPY deploy/__init__.py ./deploy/__init__.py
COPY deploy/docker/__init__.py deploy/docker/entrypoint.py ./deploy/docker/
RUN /app/.venv/bin/python -m compileall -q shared services deploy

FROM python:3.11-slim-bookworm AS runtime
ARG SERVICE=""
LABEL org.opencontainers.image.title="onex-service" \
      org.opencontainers.image.description="1+X pilot platform service (identity, registry, plans, applications, notify)"
# No compiler, no uv and no pip in the final image: only the interpreter and the locked venv.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
    && groupadd --system --gid 10001 onex \
    && useradd --system --uid 10001 --gid onex --home-dir /app --no-create-home --shell /usr/sbin/nologin onex
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ONEX_SERVICE=${SERVICE} \
    ONEX_PORT=8000
WORKDIR /app
COPY --from=build /app /app
# The only writable place the services use (dev signing key, local evidence files): a volume in
# Kubernetes, where the root filesystem is read-only.
RUN mkdir -p /app/var/keys /app/var/files && chown -R onex:onex /app/var
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-m", "deploy.docker.entrypoint", "healthcheck"]
ENTRYPOINT ["python", "-m", "deploy.docker.entrypoint"]
CMD ["serve"]
