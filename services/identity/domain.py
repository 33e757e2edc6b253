"""Pure rules and state transitions of the identity service: no I/O."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.auth.principal import Role

MOBILE = re.compile(r"^1[3-9]\d{9}$")
INSTITUTION_CODE = re.compile(r"^\d{10}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
GENERATED_PASSWORD_LENGTH = 10
# Captcha letters without look-alikes (0/O, 1/I/l, 2/Z, 5/S, 8/B).
CAPTCHA_ALPHABET = "3467acdefghjkmnpqrtuvwxy"
CAPTCHA_LENGTH = 4
PASSWORD_ALPHABET = string.ascii_lowercase + string.digits


class Purpose(StrEnum):
    register = "register"
    reset_password = "reset_password"


DEPARTMENT_ACCOUNT_ROLES = frozenset({Role.provincial, Role.municipal, Role.org, Role.operator})


def account_key(account: str) -> str:
    """Accounts are matched case-insensitively and without surrounding blanks."""
    return account.strip().lower()


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def password_problem(password: str, common: Collection[str]) -> str | None:
    """Why a new password is refused (a Chinese sentence), or None when it is acceptable."""
    if len(password) < PASSWORD_MIN:
        return f"密码至少 {PASSWORD_MIN} 个字符"
    if len(password) > PASSWORD_MAX:
        return f"密码最多 {PASSWORD_MAX} 个字符"
    if password.lower() in common:
        return "该密码过于常见，容易被猜中，请换一个"
    return None


def generate_password(common: Collection[str] = ()) -> str:
    while True:
        password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH))
        if password_problem(password, common) is None:
            return password


def generate_sms_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def generate_captcha_text() -> str:
    return "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(CAPTCHA_LENGTH))


def keyed_digest(key: bytes, *parts: str) -> str:
    """HMAC-SHA256 over the parts; secrets are stored only in this form."""
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def captcha_digest(key: bytes, captcha_id: str, answer: str) -> str:
    return keyed_digest(key, "captcha", captcha_id, answer.strip().lower())


def sms_code_digest(key: bytes, phone: str, purpose: str, code: str) -> str:
    return keyed_digest(key, "sms", phone, purpose, code.strip())


def token_digest(token: str) -> str:
    """Refresh tokens are 256 random bits: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def digests_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class SmsLimits:
    resend_seconds: int = 60
    per_phone_hour: int = 5
    per_phone_day: int = 10
    per_ip_hour: int = 20


@dataclass(frozen=True)
class Refusal:
    """A send refused by a limit: which one, and how many seconds until it allows a send again."""

    limit: str
    retry_after: int


def _wait(now: datetime, oldest_in_window: datetime, window: timedelta) -> int:
    return max(1, int((oldest_in_window + window - now).total_seconds() + 0.999))


def sms_refusal(
    *, now: datetime, phone_sends: Sequence[datetime], ip_sends: Sequence[datetime], limits: SmsLimits
) -> Refusal | None:
    """Apply the send limits to the times of earlier sends (the last day's for the phone, the last
    hour's for the client address). Returns the strictest refusal, or None when a send is allowed."""
    hour, day = timedelta(hours=1), timedelta(days=1)
    refusals: list[Refusal] = []
    recent = sorted(t for t in phone_sends if t > now - day)
    if recent and recent[-1] > now - timedelta(seconds=limits.resend_seconds):
        refusals.append(Refusal("resend", _wait(now, recent[-1], timedelta(seconds=limits.resend_seconds))))
    last_hour = [t for t in recent if t > now - hour]
    if len(last_hour) >= limits.per_phone_hour:
        refusals.append(Refusal("phone_hour", _wait(now, last_hour[-limits.per_phone_hour], hour)))
    if len(recent) >= limits.per_phone_day:
        refusals.append(Refusal("phone_day", _wait(now, recent[-limits.per_phone_day], day)))
    ip_hour = sorted(t for t in ip_sends if t > now - hour)
    if len(ip_hour) >= limits.per_ip_hour:
        refusals.append(Refusal("ip_hour", _wait(now, ip_hour[-limits.per_ip_hour], hour)))
    return max(refusals, key=lambda r: r.retry_after) if refusals else None


@dataclass(frozen=True)
class CodeCheck:
    """Outcome of one try of an SMS code: accepted, and the attempts and spent state to store."""

    accepted: bool
    attempts: int
    spent: bool


def check_sms_code(*, attempts: int, max_attempts: int, matches: bool) -> CodeCheck:
    """One more try. Once `max_attempts` tries were made the code is spent, even if the next is right."""
    if attempts >= max_attempts:
        return CodeCheck(accepted=False, attempts=attempts, spent=True)
    attempts += 1
    if matches:
        return CodeCheck(accepted=True, attempts=attempts, spent=True)
    return CodeCheck(accepted=False, attempts=attempts, spent=attempts >= max_attempts)


@dataclass(frozen=True)
class LockPolicy:
    threshold: int = 5
    base_seconds: int = 60
    max_seconds: int = 3600


def lock_seconds(failures: int, policy: LockPolicy) -> int:
    """Progressive lock-out: none below the threshold, then base, doubling with each further failure."""
    if failures < policy.threshold:
        return 0
    return int(min(policy.base_seconds * 2 ** min(failures - policy.threshold, 20), policy.max_seconds))


def scope_problem(
    role: Role, *, province_code: str | None, city_code: str | None, org_id: str | None
) -> tuple[str, str] | None:
    """What a department or organisation account lacks for its role: (field, Chinese message)."""
    if role in (Role.provincial, Role.municipal) and not (province_code and re.fullmatch(r"\d{2}", province_code)):
        return "province_code", "请填写 2 位省级行政区划代码"
    if role is Role.municipal and not (
        city_code and re.fullmatch(r"\d{4}", city_code) and city_code.startswith(province_code or "")
    ):
        return "city_code", "请填写所属省份下的 4 位地市代码"
    if role is Role.org and not org_id:
        return "org_id", "请填写培训评价组织"
    return None


def sub_account_name(institution_code: str, taken: Collection[str]) -> str:
    """Sub-accounts are named after their school: `<code>-01`, `<code>-02`, … (first free number)."""
    number = 1
    while f"{institution_code}-{number:02d}" in taken:
        number += 1
    return f"{institution_code}-{number:02d}"
