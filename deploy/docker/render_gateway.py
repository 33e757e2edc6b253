"""Render the gateway's nginx config for a container (used by gateway.Dockerfile at build time).

Reuses deploy/gateway's template and routing table; only the layout differs from `make up`:
each service is one upstream name resolved by the platform's DNS (a Compose service or a Kubernetes
Service called like the service, port 8000), logs go to the container's stdout/stderr, the config and
pages are baked into the image, and only the prefix (pid, temp files) needs to be writable.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deploy.gateway.render import GatewayConfig, render_docs_page, render_nginx_conf
from deploy.gateway.routes import SERVICES

PREFIX = Path("/var/cache/onex-gateway")  # writable: an emptyDir in Kubernetes
LOG_DIR = Path("/var/log/onex-gateway")  # gateway-access.log -> stdout, gateway-error.log -> stderr
HTML_DIR = Path("/usr/share/onex-gateway/html")  # the /docs page
WEB_ROOT = Path("/usr/share/onex-gateway/web")  # the built web client
SERVICE_PORT = 8000
# Behind an ingress controller every request arrives from the controller's address: trust the
# X-Forwarded-For it sets (only from the cluster's private ranges), so that the per-client rate limits
# and the services' client-IP limits see the real client.
TRUSTED_PROXIES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")
REAL_IP = "".join(f"    set_real_ip_from {cidr};\n" for cidr in TRUSTED_PROXIES) + (
    "    real_ip_header X-Forwarded-For;\n    real_ip_recursive on;\n"
)


def container_config(listen: str = "8080") -> GatewayConfig:
    return GatewayConfig(
        listen=listen,
        upstreams={service: [f"{service}:{SERVICE_PORT}"] for service in SERVICES},
        prefix=PREFIX,
        log_dir=LOG_DIR,
        web_root=WEB_ROOT,
    )


def render(out: Path) -> None:
    text = render_nginx_conf(container_config())
    # The template puts the /docs page under the prefix; in the image it is read-only content.
    text = text.replace(f"{PREFIX}/html/docs.html", f"{HTML_DIR}/docs.html")
    text = text.replace("http {\n", "http {\n" + REAL_IP, 1)
    (out / "html").mkdir(parents=True, exist_ok=True)
    (out / "nginx.conf").write_text(text, encoding="utf-8")
    (out / "html" / "docs.html").write_text(render_docs_page(), encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    render(parser.parse_args().out)
