"""Domain errors of the identity service; the router maps each to a problem code."""

from __future__ import annotations


class IdentityError(Exception):
    code = "identity_error"
    status = 400
    detail = "请求无法完成。"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or type(self).detail
        super().__init__(self.detail)


class CaptchaInvalid(IdentityError):
    code, status, detail = "captcha_invalid", 400, "图形验证码错误或已过期，请刷新后重新输入。"


class SmsCodeInvalid(IdentityError):
    code, status, detail = "sms_code_invalid", 400, "短信验证码错误或已失效，请重新获取。"


class SmsTooFrequent(IdentityError):
    code, status, detail = "sms_too_frequent", 429, "短信验证码发送过于频繁，请稍后再试。"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class InvalidCredentials(IdentityError):
    code, status, detail = "invalid_credentials", 401, "账号或密码错误。"


class WrongPassword(IdentityError):
    code, status, detail = "invalid_credentials", 400, "原密码错误。"


class AccountLocked(IdentityError):
    code, status, detail = "account_locked", 423, "密码错误次数过多，账号已临时锁定。"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, (retry_after + 59) // 60)
        super().__init__(f"密码错误次数过多，账号已临时锁定，请 {minutes} 分钟后再试。")
        self.retry_after = retry_after


class TooManyFailures(IdentityError):
    code, status, detail = "too_many_requests", 429, "登录失败次数过多，请稍后再试。"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


class RefreshTokenInvalid(IdentityError):
    code, status, detail = "unauthenticated", 401, "登录已失效，请重新登录。"


class InstitutionNotFound(IdentityError):
    code, status, detail = "institution_not_found", 404, "所选省份中没有该院校，请核对院校与院校识别码。"


class InstitutionAlreadyRegistered(IdentityError):
    code, status, detail = "institution_already_registered", 409, "该院校已注册过账号，请直接登录或找回密码。"


class AccountExists(IdentityError):
    code, status, detail = "account_exists", 409, "该账号已存在。"


class AccountNotFound(IdentityError):
    code, status, detail = "not_found", 404, "账号不存在。"


class AccountAmbiguous(IdentityError):
    code, status, detail = "account_required", 422, "该手机号绑定了多个账号，请填写要重置密码的账号。"


class FieldInvalid(IdentityError):
    """A field breaks a rule the schema cannot express (common password, scope of a role)."""

    code, status, detail = "validation_error", 422, "提交的数据有误，请检查标出的字段。"

    def __init__(self, field: str, message: str) -> None:
        super().__init__()
        self.field = field
        self.message = message
