"""Render the gateway's nginx config from the running instances, check it, and lay out its directory.

A gateway directory (the nginx `-p` prefix) holds `nginx.conf`, `nginx.pid`, `tmp/` and `html/`
(the /docs page and a placeholder for an unbuilt web client); logs go to a separate directory.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from deploy.gateway.routes import AUTH_OWNER, SERVICES, location_regex

HERE = Path(__file__).resolve().parent
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
SERVICE_TITLES = {
    "identity": "账号与登录",
    "registry": "院校总库与基础数据",
    "plans": "申报计划",
    "applications": "试点申报与审核",
    "notify": "短信与站内通知",
}


class GatewayError(RuntimeError):
    pass


@dataclass(frozen=True)
class RateLimits:
    """Per client address. Tests and benchmarks that log in many accounts from one address raise them."""

    login_rate: str = "20r/m"
    login_burst: int = 10
    sms_rate: str = "10r/m"
    sms_burst: int = 5
    auth_rate: str = "10r/s"
    auth_burst: int = 30
    retry_after: int = 10


@dataclass(frozen=True)
class GatewayConfig:
    listen: str  # e.g. "127.0.0.1:8080"
    upstreams: Mapping[str, Sequence[str]]  # service -> ["127.0.0.1:8001", ...]
    prefix: Path  # nginx -p: config, pid, temp files, html
    log_dir: Path
    web_root: Path | None = None  # a built web client (index.html); None serves a placeholder
    limits: RateLimits = field(default_factory=RateLimits)
    max_body_mb: int = 25
    workers: str = "auto"
    max_fails: int = 2
    fail_timeout: str = "10s"

    @property
    def conf_path(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def pid_path(self) -> Path:
        return self.prefix / "nginx.pid"

    @property
    def html_dir(self) -> Path:
        return self.prefix / "html"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    )


def render_nginx_conf(config: GatewayConfig) -> str:
    """The nginx.conf text for `config`; every service must have at least one instance."""
    missing = [s for s in SERVICES if not config.upstreams.get(s)]
    if missing:
        raise GatewayError(f"no running instance for: {', '.join(missing)}")
    template = _environment().get_template("nginx.conf.j2")
    return template.render(
        user=_worker_user(),
        workers=config.workers,
        prefix=config.prefix,
        log_dir=config.log_dir,
        listen=config.listen,
        upstreams={s: list(config.upstreams[s]) for s in SERVICES},
        locations={s: location_regex(s) for s in SERVICES},
        auth_owner=AUTH_OWNER,
        limits=config.limits,
        max_body=f"{config.max_body_mb}m",
        problems=problem_bodies(config.max_body_mb),
        web_root=config.web_root or config.html_dir,
        max_fails=config.max_fails,
        fail_timeout=config.fail_timeout,
    )


# The errors nginx answers itself: (code, title, Chinese detail) as in shared.http.errors, whose
# format the bodies follow. Kept here because the gateway image renders this module without the
# services' dependencies; tests/gateway checks the two agree.
GATEWAY_PROBLEMS: dict[int, tuple[str, str, str]] = {
    404: ("not_found", "Not Found", "请求的资源不存在。"),
    413: ("file_too_large", "Content Too Large", "上传内容过大，单次请求不能超过 {max_body_mb} MB。"),
    429: ("too_many_requests", "Too Many Requests", "操作过于频繁，请稍后再试。"),
    503: ("service_unavailable", "Service Unavailable", "服务暂不可用，请稍后重试。"),
}


def problem_bodies(max_body_mb: int) -> dict[int, str]:
    """JSON bodies for nginx's `return`, with the request id filled in by nginx per request."""
    bodies = {}
    for status, (code, title, detail) in GATEWAY_PROBLEMS.items():
        body = {
            "type": f"https://onex.example/problems/{code}",
            "title": title,
            "status": status,
            "detail": detail.format(max_body_mb=max_body_mb),
            "code": code,
            "request_id": "$onex_request_id",
        }
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        if "'" in text:
            raise GatewayError(f"a problem body cannot contain a single quote: {text}")
        bodies[status] = text
    return bodies


def _worker_user() -> str | None:
    """Only root may name a worker user; keep workers as the caller so they read its files."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwuid(os.geteuid()).pw_name


def render_docs_page() -> str:
    template = _environment().get_template("docs.html.j2")
    return template.render(services=[(s, SERVICE_TITLES[s]) for s in SERVICES])


def write_gateway(config: GatewayConfig) -> bool:
    """Write the gateway directory for `config`. Returns True if nginx.conf changed."""
    for name in TEMP_DIRS:
        (config.prefix / "tmp" / name).mkdir(parents=True, exist_ok=True)
    config.html_dir.mkdir(parents=True, exist_ok=True)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    (config.html_dir / "docs.html").write_text(render_docs_page(), encoding="utf-8")
    shutil.copyfile(HERE / "placeholder.html", config.html_dir / "index.html")
    text = render_nginx_conf(config)
    old = config.conf_path.read_text(encoding="utf-8") if config.conf_path.exists() else None
    if old == text:
        return False
    tmp = config.conf_path.with_suffix(".conf.new")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, config.conf_path)
    return True


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise GatewayError("nginx is not installed: run `make system` (deploy/ensure-system.sh) first")
    return found


def nginx_command(config: GatewayConfig, *extra: str) -> list[str]:
    """nginx with this gateway's prefix and config; `-e` keeps even early errors out of /var/log."""
    return [
        nginx_binary(),
        "-p",
        str(config.prefix),
        "-c",
        str(config.conf_path),
        "-e",
        str(config.log_dir / "gateway-error.log"),
        *extra,
    ]


def check_config(config: GatewayConfig) -> None:
    """`nginx -t` the written config; raise with nginx's own message when it is refused."""
    result = subprocess.run(nginx_command(config, "-t", "-q"), capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise GatewayError(f"nginx refused {config.conf_path}:\n{result.stderr.strip()}")
