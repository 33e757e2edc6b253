"""Use cases of the identity service: one function, one transaction; events staged in it.

Several use cases must keep a write even when they refuse the request (a spent captcha, a counted
wrong SMS code, a login failure): they record the refusal inside the transaction, let it commit,
and raise the domain error after it."""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from captcha.image import ImageCaptcha
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity import domain
from services.identity.config import IdentitySettings
from services.identity.exceptions import (
    AccountAmbiguous,
    AccountExists,
    AccountLocked,
    AccountNotFound,
    CaptchaInvalid,
    FieldInvalid,
    IdentityError,
    InstitutionAlreadyRegistered,
    InstitutionNotFound,
    InvalidCredentials,
    RefreshTokenInvalid,
    SmsCodeInvalid,
    SmsTooFrequent,
    TooManyFailures,
    WrongPassword,
)
from services.identity.models import (
    Account,
    Captcha,
    Institution,
    LoginFailure,
    LoginThrottle,
    RefreshToken,
    SmsCode,
)
from services.identity.passwords import common_passwords, hash_password, verify_password
from shared.auth.keys import TokenIssuer
from shared.auth.principal import SCHOOL_ROLES, Principal, Role
from shared.contracts.identity import (
    AccountCreated,
    AccountData,
    AccountRegistered,
    AccountRegisteredData,
    AccountRemoved,
    PasswordReset,
    PasswordResetData,
    SmsCodeRequested,
    SmsCodeRequestedData,
)
from shared.logging import get_logger
from shared.messaging.outbox import stage

log = get_logger("identity")
PRODUCER = "identity"


@dataclass(frozen=True)
class IdentityContext:
    """What the use cases need besides the session: settings, keys, and the derived policies."""

    settings: IdentitySettings
    issuer: TokenIssuer
    hmac_key: bytes

    @property
    def sms_limits(self) -> domain.SmsLimits:
        s = self.settings
        return domain.SmsLimits(s.sms_resend_seconds, s.sms_per_phone_hour, s.sms_per_phone_day, s.sms_per_ip_hour)

    @property
    def lock_policy(self) -> domain.LockPolicy:
        s = self.settings
        return domain.LockPolicy(s.login_lock_threshold, s.login_lock_base_seconds, s.login_lock_max_seconds)


@dataclass(frozen=True)
class CaptchaChallenge:
    captcha_id: uuid.UUID
    image: str
    expires_in: int


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    account: str
    role: str


@dataclass(frozen=True)
class IssuedPassword:
    """A new account or a reset password: the password is shown to the caller exactly once."""

    account: Account
    password: str
    institution_name: str | None = None


def principal_of(account: Account) -> Principal:
    return Principal(
        account_id=str(account.id),
        account=account.account,
        role=Role(account.role),
        institution_code=account.institution_code,
        province_code=account.province_code,
        city_code=account.city_code,
        org_id=account.org_id,
    )


def account_data(account: Account, *, institution_name: str | None = None) -> dict[str, Any]:
    return {
        "account_id": str(account.id),
        "account": account.account,
        "role": account.role,
        "phone": account.phone,
        "name": account.name,
        "primary": account.is_primary,
        "institution_code": account.institution_code,
        "institution_name": institution_name,
        "province_code": account.province_code,
        "city_code": account.city_code,
        "org_id": account.org_id,
    }


def check_new_password(password: str, *, field: str = "new_password") -> None:
    problem = domain.password_problem(password, common_passwords())
    if problem:
        raise FieldInvalid(field, problem)


def _account_uuid(account_id: str) -> uuid.UUID:
    """The `sub` of a verified token; anything but one of our ids is an unknown account."""
    try:
        return uuid.UUID(account_id)
    except ValueError as exc:
        raise AccountNotFound() from exc


async def _advisory_lock(session: AsyncSession, key: str) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


# --- captcha -------------------------------------------------------------------------------------


def _render_captcha(answer: str) -> str:
    png = ImageCaptcha(width=120, height=44, font_sizes=(32, 36, 40)).generate(answer, format="png").getvalue()
    return "data:image/png;base64," + base64.b64encode(png).decode()


async def create_captcha(*, session: AsyncSession, ctx: IdentityContext, now: datetime) -> CaptchaChallenge:
    """A new image captcha: the answer is stored as an HMAC (and in clear only in dev)."""
    answer = domain.generate_captcha_text()
    captcha_id = uuid.uuid4()
    image = await asyncio.to_thread(_render_captcha, answer)
    ttl = ctx.settings.captcha_ttl_seconds
    async with session.begin():
        session.add(
            Captcha(
                id=captcha_id,
                answer_digest=domain.captcha_digest(ctx.hmac_key, str(captcha_id), answer),
                dev_answer=answer if ctx.settings.is_dev else None,
                expires_at=now + timedelta(seconds=ttl),
            )
        )
        await _sweep(session, now)
    return CaptchaChallenge(captcha_id=captcha_id, image=image, expires_in=ttl)


async def _sweep(session: AsyncSession, now: datetime) -> None:
    """Drop a few rows no rule reads any more. Every login and code request starts with a captcha,
    so this keeps the tables small without a scheduled job."""
    stale = (
        (Captcha, Captcha.id, Captcha.expires_at < now - timedelta(hours=1)),
        (SmsCode, SmsCode.id, SmsCode.created_at < now - timedelta(days=2)),
        (LoginFailure, LoginFailure.id, LoginFailure.at < now - timedelta(hours=2)),
        (RefreshToken, RefreshToken.id, RefreshToken.expires_at < now - timedelta(days=1)),
    )
    for table, key, condition in stale:
        await session.execute(delete(table).where(key.in_(select(key).where(condition).limit(50))))


async def dev_captcha_answer(*, session: AsyncSession, captcha_id: uuid.UUID) -> str | None:
    """The clear answer kept in dev only (None elsewhere, or for an unknown captcha)."""
    async with session.begin():
        captcha = await session.get(Captcha, captcha_id)
        return captcha.dev_answer if captcha else None


async def _spend_captcha(
    session: AsyncSession, ctx: IdentityContext, captcha_id: str, answer: str, now: datetime
) -> bool:
    """Single use: any try spends the captcha, right or wrong."""
    try:
        parsed = uuid.UUID(captcha_id)
    except ValueError:
        return False
    stored = (
        await session.execute(
            update(Captcha)
            .where(Captcha.id == parsed, Captcha.used_at.is_(None), Captcha.expires_at > now)
            .values(used_at=now)
            .returning(Captcha.answer_digest)
        )
    ).scalar_one_or_none()
    return stored is not None and domain.digests_equal(stored, domain.captcha_digest(ctx.hmac_key, str(parsed), answer))


# --- SMS codes ------------------------------------------------------------------------------------


async def request_sms_code(
    *,
    session: AsyncSession,
    ctx: IdentityContext,
    phone: str,
    purpose: domain.Purpose,
    captcha_id: str,
    captcha_answer: str,
    client_ip: str,
    now: datetime,
) -> int:
    """Send a code to `phone` after a solved captcha, within the per-phone and per-address limits.
    A reset code for a phone no account holds is recorded but not sent: the answer is the same.
    Returns the seconds until another code may be requested."""
    error: IdentityError | None = None
    async with session.begin():
        if not await _spend_captcha(session, ctx, captcha_id, captcha_answer, now):
            error = CaptchaInvalid()
        else:
            error = await _send_code(session, ctx, phone, purpose, client_ip, now)
    if error:
        raise error
    return ctx.settings.sms_resend_seconds


async def _send_code(
    session: AsyncSession, ctx: IdentityContext, phone: str, purpose: domain.Purpose, client_ip: str, now: datetime
) -> IdentityError | None:
    # Serialise sends per phone and per address so that concurrent requests cannot both pass a limit.
    await _advisory_lock(session, f"sms-phone:{phone}")
    await _advisory_lock(session, f"sms-ip:{client_ip}")
    phone_sends = (
        await session.scalars(
            select(SmsCode.created_at).where(SmsCode.phone == phone, SmsCode.created_at > now - timedelta(days=1))
        )
    ).all()
    ip_sends = (
        await session.scalars(
            select(SmsCode.created_at).where(
                SmsCode.client_ip == client_ip, SmsCode.created_at > now - timedelta(hours=1)
            )
        )
    ).all()
    refusal = domain.sms_refusal(now=now, phone_sends=phone_sends, ip_sends=ip_sends, limits=ctx.sms_limits)
    if refusal:
        log.info("sms_code_refused", limit=refusal.limit, retry_after=refusal.retry_after)
        return SmsTooFrequent(refusal.retry_after)
    await session.execute(
        update(SmsCode)
        .where(SmsCode.phone == phone, SmsCode.purpose == purpose.value, SmsCode.spent_at.is_(None))
        .values(spent_at=now)
    )
    code, code_id, ttl = domain.generate_sms_code(), uuid.uuid4(), ctx.settings.sms_code_ttl_seconds
    session.add(
        SmsCode(
            id=code_id,
            phone=phone,
            purpose=purpose.value,
            code_digest=domain.sms_code_digest(ctx.hmac_key, phone, purpose.value, code),
            client_ip=client_ip,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
            attempts=0,
        )
    )
    deliver = purpose is domain.Purpose.register or await _phone_known(session, phone)
    if deliver:
        data = SmsCodeRequestedData(phone=phone, purpose=purpose.value, code=code, ttl_seconds=ttl)
        await stage(session, SmsCodeRequested(subject=str(code_id), subject_version=1, data=data), producer=PRODUCER)
    log.info("sms_code_requested", purpose=purpose.value, phone=domain.mask_phone(phone), delivered=deliver)
    return None


async def _phone_known(session: AsyncSession, phone: str) -> bool:
    return (await session.scalar(select(func.count()).select_from(Account).where(Account.phone == phone))) != 0


async def _try_sms_code(
    session: AsyncSession, ctx: IdentityContext, phone: str, purpose: domain.Purpose, code: str, now: datetime
) -> bool:
    """One try of the live code for (phone, purpose); the row lock makes concurrent tries count one by one."""
    row = (
        await session.scalars(
            select(SmsCode)
            .where(
                SmsCode.phone == phone,
                SmsCode.purpose == purpose.value,
                SmsCode.spent_at.is_(None),
                SmsCode.expires_at > now,
            )
            .order_by(SmsCode.created_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if row is None:
        return False
    matches = domain.digests_equal(row.code_digest, domain.sms_code_digest(ctx.hmac_key, phone, purpose.value, code))
    outcome = domain.check_sms_code(
        attempts=row.attempts, max_attempts=ctx.settings.sms_code_max_attempts, matches=matches
    )
    row.attempts = outcome.attempts
    if outcome.spent:
        row.spent_at = now
    return outcome.accepted


# --- registration ---------------------------------------------------------------------------------


async def register(
    *,
    session: AsyncSession,
    ctx: IdentityContext,
    province_code: str,
    institution_code: str,
    phone: str,
    sms_code: str,
    now: datetime,
) -> IssuedPassword:
    """Create the primary account of an institution of the register, named by its code, with a
    generated password returned once and sent by SMS (`identity.account.registered`)."""
    error: IdentityError | None = None
    result: IssuedPassword | None = None
    try:
        async with session.begin():
            institution = await session.get(Institution, institution_code)
            if institution is None or institution.province_code != province_code:
                error = InstitutionNotFound()
            elif await _primary_exists(session, institution_code):
                error = InstitutionAlreadyRegistered()
            elif not await _try_sms_code(session, ctx, phone, domain.Purpose.register, sms_code, now):
                error = SmsCodeInvalid()
            else:
                result = await _create_primary(session, institution, phone, now)
    except IntegrityError as exc:  # a concurrent registration of the same institution won
        raise InstitutionAlreadyRegistered() from exc
    if error or result is None:
        raise error or SmsCodeInvalid()
    log.info("account_registered", account=result.account.account, institution_code=institution_code)
    return result


async def _primary_exists(session: AsyncSession, institution_code: str) -> bool:
    query = select(func.count()).select_from(Account).where(Account.institution_code == institution_code)
    return (await session.scalar(query.where(Account.is_primary))) != 0


async def _create_primary(session: AsyncSession, institution: Institution, phone: str, now: datetime) -> IssuedPassword:
    password = domain.generate_password(common_passwords())
    account = Account(
        id=uuid.uuid4(),
        account=institution.code,
        account_key=domain.account_key(institution.code),
        password_hash=await hash_password(password),
        role=Role.institution.value,
        name=institution.name,
        phone=phone,
        is_primary=True,
        institution_code=institution.code,
        province_code=institution.province_code,
        city_code=institution.city_code,
        created_at=now,
        password_changed_at=now,
    )
    session.add(account)
    await session.flush()
    data = AccountRegisteredData(**account_data(account, institution_name=institution.name), password=password)
    await stage(session, AccountRegistered(subject=str(account.id), subject_version=1, data=data), producer=PRODUCER)
    return IssuedPassword(account=account, password=password, institution_name=institution.name)


# --- login and tokens -----------------------------------------------------------------------------


async def login(
    *,
    session: AsyncSession,
    ctx: IdentityContext,
    account: str,
    password: str,
    captcha_id: str,
    captcha_answer: str,
    client_ip: str,
    now: datetime,
) -> TokenPair:
    """Check captcha, lock-out and password; on success issue an access token and a new refresh
    token family. Failures count per login key (existing or not) and per client address."""
    error: IdentityError | None = None
    pair: TokenPair | None = None
    async with session.begin():
        ip_wait = await _hourly_cap_wait(
            session, LoginFailure.client_ip == client_ip, ctx.settings.login_failures_per_ip_hour, now
        )
        if ip_wait:
            error = TooManyFailures(ip_wait)
        elif not await _spend_captcha(session, ctx, captcha_id, captcha_answer, now):
            error = CaptchaInvalid()
        else:
            found = await _find_account(session, account)
            error = await _check_password(session, ctx, domain.account_key(account), found, password, client_ip, now)
            if error is None and found is not None:
                pair = await _issue_pair(session, ctx, found, uuid.uuid4(), now)
    if error or pair is None:
        log.info("login_failed", reason=(error.code if error else "unknown"))
        raise error or InvalidCredentials()
    log.info("login_succeeded", account=pair.account, role=pair.role)
    return pair


async def _hourly_cap_wait(session: AsyncSession, where: Any, cap: int, now: datetime) -> int:
    """Seconds until fewer than `cap` failures matching `where` remain in the last hour (0: under the cap)."""
    times = (
        await session.scalars(
            select(LoginFailure.at)
            .where(where, LoginFailure.at > now - timedelta(hours=1))
            .order_by(LoginFailure.at.desc())
            .limit(cap)
        )
    ).all()
    if len(times) < cap:
        return 0
    return max(1, int((times[-1] + timedelta(hours=1) - now).total_seconds() + 0.999))


async def _find_account(session: AsyncSession, account: str) -> Account | None:
    return (await session.scalars(select(Account).where(Account.account_key == domain.account_key(account)))).first()


async def _check_password(
    session: AsyncSession,
    ctx: IdentityContext,
    key: str,
    account: Account | None,
    password: str,
    client_ip: str,
    now: datetime,
) -> IdentityError | None:
    """Refuse a locked key; verify the password; count a failure (and maybe lock) or clear the count."""
    throttle = (
        await session.scalars(select(LoginThrottle).where(LoginThrottle.account_key == key).with_for_update())
    ).first()
    if throttle and throttle.locked_until and throttle.locked_until > now:
        return AccountLocked(int((throttle.locked_until - now).total_seconds() + 0.999))
    if await verify_password(account.password_hash if account else None, password):
        if throttle:
            throttle.failures, throttle.locked_until = 0, None
        return None
    session.add(LoginFailure(client_ip=client_ip, account_key=key, at=now))
    await session.flush()
    throttle = await _count_failure(session, key, throttle, now)
    # The hard cap holds whatever the lock-out policy: never more failures an hour than this per key.
    capped = await _hourly_cap_wait(
        session, LoginFailure.account_key == key, ctx.settings.login_failures_per_account_hour, now
    )
    wait = max(domain.lock_seconds(throttle.failures, ctx.lock_policy), capped)
    if wait:
        throttle.locked_until = now + timedelta(seconds=wait)
    return AccountLocked(wait) if wait else InvalidCredentials()


async def _count_failure(
    session: AsyncSession, key: str, throttle: LoginThrottle | None, now: datetime
) -> LoginThrottle:
    """One more failure for the key (a row is created on its first failure)."""
    if throttle is None:
        stmt = (
            insert(LoginThrottle)
            .values(account_key=key, failures=1, last_failure_at=now)
            .on_conflict_do_update(
                index_elements=[LoginThrottle.account_key],
                set_={"failures": LoginThrottle.failures + 1, "last_failure_at": now},
            )
        )
        await session.execute(stmt)
        counted = await session.get(LoginThrottle, key, populate_existing=True, with_for_update=True)
        assert counted is not None  # just inserted or updated in this transaction
        return counted
    # A failure long after the previous one starts a new count.
    stale = throttle.last_failure_at is not None and throttle.last_failure_at < now - timedelta(days=1)
    throttle.failures = 1 if stale else throttle.failures + 1
    throttle.last_failure_at = now
    return throttle


async def _issue_pair(
    session: AsyncSession, ctx: IdentityContext, account: Account, family_id: uuid.UUID, now: datetime
) -> TokenPair:
    raw = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            id=uuid.uuid4(),
            account_id=account.id,
            family_id=family_id,
            token_digest=domain.token_digest(raw),
            created_at=now,
            expires_at=now + timedelta(seconds=ctx.settings.refresh_ttl_seconds),
        )
    )
    access = ctx.issuer.issue(principal_of(account), now=now.timestamp())
    return TokenPair(
        access_token=access,
        refresh_token=raw,
        expires_in=int(ctx.issuer.ttl.total_seconds()),
        account=account.account,
        role=account.role,
    )


async def refresh_tokens(
    *, session: AsyncSession, ctx: IdentityContext, refresh_token: str, now: datetime
) -> TokenPair:
    """Rotate: the presented token is spent and a new one of the same family issued. Presenting a
    spent token again means it leaked: the whole family is revoked."""
    pair: TokenPair | None = None
    async with session.begin():
        row = (
            await session.scalars(
                select(RefreshToken)
                .where(RefreshToken.token_digest == domain.token_digest(refresh_token))
                .with_for_update()
            )
        ).first()
        if row is not None and (row.used_at is not None or row.revoked_at is not None):
            await _revoke(session, now, RefreshToken.family_id == row.family_id)
            if row.used_at is not None:
                log.warning("refresh_token_reused", account_id=str(row.account_id), family_id=str(row.family_id))
        elif row is not None and row.expires_at > now:
            row.used_at = now
            account = await session.get(Account, row.account_id)
            if account is not None:
                pair = await _issue_pair(session, ctx, account, row.family_id, now)
    if pair is None:
        raise RefreshTokenInvalid()
    return pair


async def _revoke(session: AsyncSession, now: datetime, *where: Any) -> None:
    await session.execute(update(RefreshToken).where(*where, RefreshToken.revoked_at.is_(None)).values(revoked_at=now))


async def logout(*, session: AsyncSession, account_id: str, refresh_token: str | None, now: datetime) -> None:
    """Revoke the session of `refresh_token` (its family), or every session of the account without one."""
    async with session.begin():
        owner = RefreshToken.account_id == _account_uuid(account_id)
        if refresh_token:
            family = select(RefreshToken.family_id).where(
                RefreshToken.token_digest == domain.token_digest(refresh_token), owner
            )
            await _revoke(session, now, RefreshToken.family_id.in_(family.scalar_subquery()))
        else:
            await _revoke(session, now, owner)


# --- passwords ------------------------------------------------------------------------------------


async def _set_password(session: AsyncSession, account: Account, password: str, now: datetime) -> None:
    """New hash, every refresh token revoked, lock-out cleared."""
    account.password_hash = await hash_password(password)
    account.password_changed_at = now
    await _revoke(session, now, RefreshToken.account_id == account.id)
    await session.execute(delete(LoginThrottle).where(LoginThrottle.account_key == account.account_key))


async def change_password(
    *,
    session: AsyncSession,
    ctx: IdentityContext,
    account_id: str,
    old_password: str,
    new_password: str,
    client_ip: str,
    now: datetime,
) -> None:
    """Change one's own password knowing the old one; wrong old passwords count toward the lock-out."""
    check_new_password(new_password)
    error: IdentityError | None = None
    async with session.begin():
        account = await session.get(Account, _account_uuid(account_id))
        if account is None:
            raise AccountNotFound()
        error = await _check_password(session, ctx, account.account_key, account, old_password, client_ip, now)
        if error is None:
            await _set_password(session, account, new_password, now)
    if isinstance(error, InvalidCredentials):
        raise WrongPassword()
    if error:
        raise error
    log.info("password_changed", account=account.account)


async def reset_password(
    *,
    session: AsyncSession,
    ctx: IdentityContext,
    phone: str,
    sms_code: str,
    new_password: str,
    account: str | None,
    now: datetime,
) -> None:
    """Reset by SMS code. A phone held by several accounts needs `account` to say which; an unknown
    phone gets exactly the answer of a wrong code."""
    check_new_password(new_password)
    error: IdentityError | None = None
    async with session.begin():
        if not await _try_sms_code(session, ctx, phone, domain.Purpose.reset_password, sms_code, now):
            error = SmsCodeInvalid()
        else:
            query = select(Account).where(Account.phone == phone)
            if account:
                query = query.where(Account.account_key == domain.account_key(account))
            holders = (await session.scalars(query)).all()
            if len(holders) > 1:
                raise AccountAmbiguous()  # rolls back: the code stays valid for a second try
            if not holders:
                error = SmsCodeInvalid()
            else:
                await _set_password(session, holders[0], new_password, now)
                await _stage_reset(session, holders[0], None, now)
    if error:
        raise error
    log.info("password_reset", account=holders[0].account, by="sms")


async def _stage_reset(session: AsyncSession, account: Account, new_password: str | None, now: datetime) -> None:
    data = PasswordResetData(
        account_id=str(account.id),
        account=account.account,
        phone=account.phone,
        institution_code=account.institution_code,
        new_password=new_password,
    )
    event = PasswordReset(subject=str(account.id), subject_version=int(now.timestamp() * 1000), data=data)
    await stage(session, event, producer=PRODUCER)


async def reset_school_password(
    *, session: AsyncSession, principal: Principal, account: str, now: datetime
) -> IssuedPassword:
    """A provincial department (its province only) or the operator gives a school account a new
    generated password, returned once and sent by SMS to the account's phone."""
    async with session.begin():
        target = await _find_account(session, account)
        if (
            target is None
            or Role(target.role) not in SCHOOL_ROLES
            or (not principal.is_operator and target.province_code != principal.province_code)
        ):
            raise AccountNotFound()
        password = domain.generate_password(common_passwords())
        await _set_password(session, target, password, now)
        await _stage_reset(session, target, password, now)
    log.info("school_password_reset", account=target.account, by=principal.account)
    return IssuedPassword(account=target, password=password)


# --- accounts -------------------------------------------------------------------------------------


async def get_account(*, session: AsyncSession, account_id: str) -> tuple[Account, str | None]:
    """An account and the name of its institution (if any)."""
    async with session.begin():
        account = await session.get(Account, _account_uuid(account_id))
        if account is None:
            raise AccountNotFound()
        institution = await session.get(Institution, account.institution_code) if account.institution_code else None
        return account, institution.name if institution else None


async def list_accounts(
    *,
    session: AsyncSession,
    principal: Principal,
    role: Role | None,
    q: str | None,
    offset: int,
    limit: int,
) -> tuple[list[Account], int]:
    """Accounts for the operator (all) or a provincial department (those of its province)."""
    where: list[Any] = []
    if not principal.is_operator:
        where.append(Account.province_code == principal.province_code)
    if role is not None:
        where.append(Account.role == role.value)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(Account.account.ilike(pattern) | Account.name.ilike(pattern))
    async with session.begin():
        total = await session.scalar(select(func.count()).select_from(Account).where(*where))
        query = select(Account).where(*where).order_by(Account.account).offset(offset).limit(limit)
        return list((await session.scalars(query)).all()), int(total or 0)


async def create_sub_account(
    *, session: AsyncSession, principal: Principal, name: str, phone: str, now: datetime
) -> IssuedPassword:
    """A school's primary account creates a sub-account (`<code>-NN`) with a generated password."""
    code = principal.institution_code or ""
    async with session.begin():
        await _advisory_lock(session, f"sub-accounts:{code}")
        taken = (await session.scalars(select(Account.account_key).where(Account.institution_code == code))).all()
        password = domain.generate_password(common_passwords())
        institution = await session.get(Institution, code)
        account = Account(
            id=uuid.uuid4(),
            account=domain.sub_account_name(code, set(taken)),
            password_hash=await hash_password(password),
            role=Role.institution_sub.value,
            name=name,
            phone=phone,
            is_primary=False,
            institution_code=code,
            province_code=principal.province_code,
            city_code=principal.city_code,
            created_at=now,
            password_changed_at=now,
        )
        account.account_key = domain.account_key(account.account)
        session.add(account)
        await session.flush()
        data = AccountData(**account_data(account, institution_name=institution.name if institution else None))
        await stage(session, AccountCreated(subject=str(account.id), subject_version=1, data=data), producer=PRODUCER)
    log.info("sub_account_created", account=account.account)
    return IssuedPassword(account=account, password=password)


async def list_sub_accounts(
    *, session: AsyncSession, principal: Principal, offset: int, limit: int
) -> tuple[list[Account], int]:
    async with session.begin():
        where = (Account.institution_code == principal.institution_code, Account.role == Role.institution_sub.value)
        total = await session.scalar(select(func.count()).select_from(Account).where(*where))
        query = select(Account).where(*where).order_by(Account.account).offset(offset).limit(limit)
        rows = await session.scalars(query)
        return list(rows.all()), int(total or 0)


async def remove_sub_account(*, session: AsyncSession, principal: Principal, account_id: uuid.UUID) -> None:
    """Delete a sub-account of the caller's school (404 for any other); its sessions go with it."""
    async with session.begin():
        account = await session.get(Account, account_id)
        if (
            account is None
            or account.role != Role.institution_sub.value
            or account.institution_code != principal.institution_code
        ):
            raise AccountNotFound()
        data = AccountData(**account_data(account))
        await session.delete(account)
        await stage(session, AccountRemoved(subject=str(account.id), subject_version=2, data=data), producer=PRODUCER)
    log.info("sub_account_removed", account=data.account)


async def create_account(
    *,
    session: AsyncSession,
    account: str,
    password: str,
    role: Role,
    phone: str,
    name: str | None = None,
    province_code: str | None = None,
    city_code: str | None = None,
    org_id: str | None = None,
    institution_code: str | None = None,
    now: datetime,
    exist_ok: bool = False,
) -> Account | None:
    """Create an account with a chosen password (operator API and CLI, demo seed) and announce it.
    Department and organisation roles need their scope; an institution account needs its school in
    the register copy unless the scope is given. With `exist_ok`, an existing account is left alone
    and None returned."""
    check_new_password(password, field="password")
    problem = domain.scope_problem(role, province_code=province_code, city_code=city_code, org_id=org_id)
    if problem:
        raise FieldInvalid(*problem)
    if role in SCHOOL_ROLES and not institution_code:
        raise FieldInvalid("institution_code", "请填写院校识别码")
    try:
        async with session.begin():
            if await _find_account(session, account) is not None:
                if exist_ok:
                    return None
                raise AccountExists()
            institution = await session.get(Institution, institution_code) if institution_code else None
            if institution_code and institution is None and not province_code:
                raise FieldInvalid("institution_code", "院校总库中没有该院校")
            created = Account(
                id=uuid.uuid4(),
                account=account.strip(),
                account_key=domain.account_key(account),
                password_hash=await hash_password(password),
                role=role.value,
                name=name or (institution.name if institution else None),
                phone=phone,
                is_primary=role is Role.institution,
                institution_code=institution_code,
                province_code=institution.province_code if institution else province_code,
                city_code=institution.city_code if institution else city_code,
                org_id=org_id,
                created_at=now,
                password_changed_at=now,
            )
            session.add(created)
            await session.flush()
            data = AccountData(**account_data(created, institution_name=created.name if institution_code else None))
            event = AccountCreated(subject=str(created.id), subject_version=1, data=data)
            await stage(session, event, producer=PRODUCER)
    except IntegrityError as exc:
        raise AccountExists() from exc
    log.info("account_created", account=created.account, role=role.value)
    return created


# --- institutions copy ----------------------------------------------------------------------------


async def apply_institution(
    session: AsyncSession, *, code: str, name: str, province_code: str, city_code: str | None, version: int
) -> bool:
    """Keep registry's institution if this version is newer than ours (runs in the caller's transaction)."""
    row = insert(Institution).values(
        code=code, name=name, province_code=province_code, city_code=city_code, subject_version=version
    )
    stmt = row.on_conflict_do_update(
        index_elements=[Institution.code],
        set_={
            "name": row.excluded.name,
            "province_code": row.excluded.province_code,
            "city_code": row.excluded.city_code,
            "subject_version": row.excluded.subject_version,
        },
        where=Institution.subject_version < row.excluded.subject_version,
    ).returning(Institution.code)
    return (await session.execute(stmt)).first() is not None
