"""Request context: a request id per request, a correlation id carried in from the caller, one
access log line, and the last line of defence that turns an unexpected exception into a 500 problem."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.errors import STATUS_DEFAULTS, problem_response
from shared.logging import get_logger

REQUEST_ID_HEADER = b"x-request-id"
CORRELATION_ID_HEADER = b"x-correlation-id"
log = get_logger("http")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")[:128]
            return text
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, quiet_paths: tuple[str, ...] = ("/healthz", "/readyz")) -> None:
        self.app = app
        self.quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, REQUEST_ID_HEADER) or uuid.uuid4().hex
        correlation_id = _header(scope, CORRELATION_ID_HEADER) or request_id
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id, correlation_id=correlation_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                log.error("unhandled_exception", method=scope["method"], path=scope["path"], exc_info=exc)
                if status["sent"]:
                    raise
                code, _, detail = STATUS_DEFAULTS[500]
                await problem_response(500, code, detail)(scope, receive, send_with_id)
            finally:
                if scope["path"] not in self.quiet_paths:
                    log.info(
                        "request",
                        method=scope["method"],
                        path=scope["path"],
                        status=status["code"],
                        ms=round((time.perf_counter() - started) * 1000, 1),
                    )
