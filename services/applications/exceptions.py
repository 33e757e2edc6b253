"""Domain errors of the applications service; the router maps each to a problem code."""

from __future__ import annotations


class ApplicationsError(Exception):
    """Base of every domain error: a stable `code`, an HTTP status and a Chinese `detail`."""

    code = "applications_error"
    status = 409
    detail = "操作失败。"

    def __init__(self, detail: str | None = None, *, fields: list[tuple[str, str]] | None = None) -> None:
        self.detail = detail or type(self).detail
        self.fields = fields or []
        super().__init__(self.detail)


class NotFound(ApplicationsError):
    code, status, detail = "not_found", 404, "申报不存在或无权访问。"


class Forbidden(ApplicationsError):
    code, status, detail = "forbidden", 403, "您的账号无权执行此操作。"


class ValidationFailed(ApplicationsError):
    code, status, detail = "validation_error", 422, "提交的数据有误，请检查标出的字段。"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(fields=[(field, message)])


class MajorNotAllowed(ApplicationsError):
    code, status, detail = "major_not_allowed", 422, "所选专业不在该证书允许的专业范围内。"

    def __init__(self, fields: list[str]) -> None:
        super().__init__(fields=[(f, "该证书不允许此专业") for f in fields])


class ProfileIncomplete(ApplicationsError):
    code, status, detail = "profile_incomplete", 422, "请先完善院校基础信息，再申报证书试点。"


class PlanNotOpen(ApplicationsError):
    code, status, detail = "plan_not_open", 409, "申报计划不在申报时间内。"


class PlanProvinceMismatch(ApplicationsError):
    code, status, detail = "plan_province_mismatch", 422, "只能申报本省的申报计划。"


class DuplicateApplication(ApplicationsError):
    code, status, detail = "duplicate_application", 409, "本校本年度已申报过该证书，不能重复申报。"


class NotEditable(ApplicationsError):
    code, status, detail = "not_editable", 409, "该申报已提交，只有审核不通过或退回修改的申报才能再次修改。"


class InvalidTransition(ApplicationsError):
    code, status, detail = "invalid_transition", 409, "当前状态不允许该操作。"


class VersionConflict(ApplicationsError):
    code, status, detail = "version_conflict", 412, "数据已被他人修改，请刷新后重试。"


class PreconditionRequired(ApplicationsError):
    code, status, detail = "precondition_required", 428, "修改时必须携带 If-Match 版本号（ETag）。"


class UnsupportedFileType(ApplicationsError):
    code, status, detail = "unsupported_file_type", 415, "只能上传 PDF 或 Word（DOC、DOCX）格式的文件。"


class FileTooLarge(ApplicationsError):
    code, status, detail = "file_too_large", 413, "单个文件不能超过 20 MB。"


class TooManyFiles(ApplicationsError):
    code, status, detail = "too_many_files", 409, "每个申报最多上传 5 个佐证材料。"


class IdempotencyKeyReused(ApplicationsError):
    code, status, detail = "idempotency_key_reused", 422, "该 Idempotency-Key 已用于另一个请求，请更换后重试。"


class IdempotencyInProgress(ApplicationsError):
    code, status, detail = "request_in_progress", 409, "相同的请求正在处理中，请稍后查看结果。"
