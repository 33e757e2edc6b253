"""RFC 9457 problem+json for every error: a stable `code`, a Chinese `detail`, field `errors`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.logging import current_context

PROBLEM_JSON = "application/problem+json"

STATUS_DEFAULTS: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "Bad Request", "请求格式不正确。"),
    401: ("unauthenticated", "Unauthorized", "请先登录。"),
    403: ("forbidden", "Forbidden", "您没有执行此操作的权限。"),
    404: ("not_found", "Not Found", "请求的资源不存在。"),
    405: ("method_not_allowed", "Method Not Allowed", "不支持该请求方法。"),
    406: ("not_acceptable", "Not Acceptable", "不支持请求的响应格式。"),
    409: ("conflict", "Conflict", "请求与当前状态冲突。"),
    412: ("version_conflict", "Precondition Failed", "数据已被他人修改，请刷新后重试。"),
    413: ("file_too_large", "Content Too Large", "上传内容过大。"),
    415: ("unsupported_media_type", "Unsupported Media Type", "不支持的内容类型。"),
    422: ("validation_error", "Unprocessable Content", "提交的数据有误，请检查后重试。"),
    423: ("locked", "Locked", "资源已锁定。"),
    428: ("precondition_required", "Precondition Required", "修改时必须携带 If-Match 版本号。"),
    429: ("too_many_requests", "Too Many Requests", "操作过于频繁，请稍后再试。"),
    500: ("internal_error", "Internal Server Error", "服务器内部错误，请稍后重试。"),
    503: ("service_unavailable", "Service Unavailable", "服务暂不可用，请稍后重试。"),
}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The body of every error response; listed in each service's OpenAPI."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None
    request_id: str | None = None


class ProblemError(Exception):
    """Raise from a router (or map a domain error into one) to answer with problem+json."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        default_code, _, default_detail = STATUS_DEFAULTS.get(status, ("error", "Error", "请求失败。"))
        self.status = status
        self.code = code or default_code
        self.detail = detail or default_detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(f"{status} {self.code}: {self.detail}")


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    title = STATUS_DEFAULTS.get(status, ("", "Error", ""))[1]
    body: dict[str, Any] = {
        "type": f"https://onex.example/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_context().get("request_id"),
    }
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


_PYDANTIC_MESSAGES = {
    "missing": "此项为必填项",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "必须是整数",
    "int_type": "必须是整数",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "less_than": "数值过大",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "uuid_parsing": "不是有效的标识",
    "datetime_parsing": "不是有效的时间",
    "datetime_from_date_parsing": "不是有效的时间",
    "timezone_aware": "时间必须带时区",
    "value_error": "取值无效",
    "json_invalid": "JSON 格式错误",
    "bool_parsing": "必须是布尔值",
    "list_type": "必须是列表",
    "dict_type": "必须是对象",
    "model_attributes_type": "必须是对象",
    "string_type": "必须是字符串",
    "too_short": "数量过少",
    "too_long": "数量过多",
    "extra_forbidden": "不允许的字段",
}


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        message = _PYDANTIC_MESSAGES.get(err.get("type", ""), "")
        ctx_error = (err.get("ctx") or {}).get("error")
        if err.get("type") == "value_error" and ctx_error is not None:
            message = str(ctx_error)
        errors.append(FieldError(field=".".join(loc) or "body", message=message or str(err.get("msg", "取值无效"))))
    return errors


def is_bad_input(exc: DBAPIError) -> bool:
    """PostgreSQL's data exceptions (SQLSTATE class 22: a NUL in a string, a number out of range, a
    malformed value) and asyncpg's own argument checks are the client's input, not a server fault."""
    cause = exc.orig.__cause__ if exc.orig is not None else None
    sqlstate = str(getattr(cause, "sqlstate", None) or getattr(exc.orig, "sqlstate", None) or "")
    return sqlstate.startswith("22") or type(cause).__name__ == "DataError"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status, exc.code, exc.detail, errors=exc.errors, headers=exc.headers, extra=exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422, "validation_error", "提交的数据有误，请检查标出的字段。", errors=_field_errors(exc)
        )

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
        if is_bad_input(exc):
            return problem_response(422, "validation_error", "提交的内容包含无法保存的字符或超出范围的数值。")
        raise exc  # a real database failure: the request context middleware answers 500 and logs it

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # Services raise ProblemError; a bare 400 is the framework failing to parse the body (JSON
            # that is not even UTF-8, a malformed multipart form): invalid input, like malformed JSON.
            errors = [FieldError(field="body", message="无法解析")]
            return problem_response(422, "validation_error", "请求体格式不正确。", errors=errors)
        code, _, detail = STATUS_DEFAULTS.get(exc.status_code, ("error", "Error", "请求失败。"))
        return problem_response(exc.status_code, code, detail, headers=getattr(exc, "headers", None))


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting each error status with the Problem schema."""
    return {
        status: {
            "model": Problem,
            "description": STATUS_DEFAULTS.get(status, ("", "Error", ""))[2],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
