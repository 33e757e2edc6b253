"""Pydantic models of the identity API (requests and responses)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from services.identity.domain import PASSWORD_MAX, Purpose

Phone = Annotated[str, Field(pattern=r"^1[3-9]\d{9}$", description="中国大陆 11 位手机号", examples=["13800000001"])]
InstitutionCode = Annotated[str, Field(pattern=r"^\d{10}$", description="10 位院校识别码")]
ProvinceCode = Annotated[str, Field(pattern=r"^\d{2}$", description="省级行政区划代码（2 位）")]
SmsCodeText = Annotated[str, Field(pattern=r"^\d{6}$", description="6 位短信验证码")]
# Length and commonness are checked by the service so that the message names the rule.
NewPassword = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX * 4)]


class CaptchaOut(BaseModel):
    captcha_id: uuid.UUID
    image: str = Field(description="PNG 图片的 data URL")
    expires_in: int = Field(description="有效秒数")


class DevCaptchaAnswer(BaseModel):
    answer: str


class SmsCodeRequest(BaseModel):
    phone: Phone
    purpose: Purpose
    captcha_id: str = Field(min_length=1, max_length=64)
    captcha_answer: str = Field(min_length=1, max_length=16)


class SmsCodeAccepted(BaseModel):
    resend_after: int = Field(description="再次获取验证码前需等待的秒数")


class RegisterRequest(BaseModel):
    province_code: ProvinceCode
    institution_code: InstitutionCode
    phone: Phone
    sms_code: SmsCodeText


class Registered(BaseModel):
    account: str
    password: str = Field(description="初始密码，仅显示这一次，同时以短信发送")
    institution_code: str
    institution_name: str


class LoginRequest(BaseModel):
    account: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX * 4)
    captcha_id: str = Field(min_length=1, max_length=64)
    captcha_answer: str = Field(min_length=1, max_length=16)


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    account: str
    role: str


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=256)


class LogoutRequest(BaseModel):
    refresh_token: str | None = Field(default=None, max_length=256)


class PasswordResetRequest(BaseModel):
    phone: Phone
    sms_code: SmsCodeText
    new_password: NewPassword
    account: str | None = Field(default=None, max_length=64, description="手机号绑定多个账号时必填")


class PasswordChangeRequest(BaseModel):
    old_password: str = Field(min_length=1, max_length=PASSWORD_MAX * 4)
    new_password: NewPassword


class MeOut(BaseModel):
    id: uuid.UUID
    account: str
    role: str
    name: str | None
    primary: bool
    institution_code: str | None
    institution_name: str | None
    province_code: str | None
    city_code: str | None
    org_id: str | None
    phone_masked: str | None


class SubAccountCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="使用人或二级学院（系部）名称")
    phone: Phone


class SubAccountCreated(BaseModel):
    id: uuid.UUID
    account: str
    password: str = Field(description="初始密码，仅显示这一次")


class SubAccountOut(BaseModel):
    id: uuid.UUID
    account: str
    name: str | None
    phone_masked: str | None
    created_at: datetime


class AccountCreate(BaseModel):
    account: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: NewPassword
    role: Literal["provincial", "municipal", "org", "operator"]
    phone: Phone
    name: str | None = Field(default=None, max_length=100)
    province_code: str | None = Field(default=None, pattern=r"^\d{2}$")
    city_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    org_id: str | None = Field(default=None, max_length=64)


class AccountCreatedOut(BaseModel):
    id: uuid.UUID
    account: str
    role: str


class PasswordIssued(BaseModel):
    account: str
    password: str = Field(description="新密码，仅显示这一次，同时以短信发送到该账号绑定的手机")


class AccountOut(BaseModel):
    id: uuid.UUID
    account: str
    role: str
    name: str | None
    primary: bool
    institution_code: str | None
    province_code: str | None
    city_code: str | None
    org_id: str | None
    phone_masked: str | None
    created_at: datetime
