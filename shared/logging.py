"""structlog set-up: JSON outside dev, request and correlation ids bound per request or event,
and secrets redacted from every line whatever key they hide under."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import structlog

SECRET_KEYS = re.compile(
    r"(password|secret|token|sms_code|captcha_answer|^answer$|authorization|cookie|private_key|signing_key|^code$)",
    re.IGNORECASE,
)
REDACTED = "***"


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: REDACTED if SECRET_KEYS.search(str(k)) else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Never let a password, SMS code, captcha answer or token reach a log line."""
    return {k: (REDACTED if k != "event" and SECRET_KEYS.search(k) else _redact(v)) for k, v in event_dict.items()}


def configure_logging(*, service: str, json: bool, level: str = "INFO") -> None:
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json else (structlog.dev.ConsoleRenderer(colors=False))
    )
    structlog.configure(
        processors=[*shared_processors, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # No file given: each line goes to the sys.stdout of the moment (a test capture that ended
        # must not keep receiving lines).
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # uvicorn's own access log duplicates our request log line.
    logging.getLogger("uvicorn.access").disabled = True


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


def bind_context(**values: Any) -> None:
    structlog.contextvars.bind_contextvars(**values)


def current_context() -> dict[str, Any]:
    return structlog.contextvars.get_contextvars()


def clear_context(*keys: str) -> None:
    structlog.contextvars.unbind_contextvars(*keys)
