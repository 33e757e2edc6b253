"""HTTP only: parse, call the service, shape the answer, map domain errors to problems."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from services.identity import service
from services.identity.dependencies import (
    ClientIp,
    Context,
    CurrentPrincipal,
    DbSession,
    Now,
    Operator,
    ProvinceOrOperator,
    SchoolPrimary,
)
from services.identity.domain import mask_phone
from services.identity.exceptions import (
    AccountLocked,
    AccountNotFound,
    FieldInvalid,
    IdentityError,
    SmsTooFrequent,
    TooManyFailures,
)
from services.identity.schemas import (
    AccountCreate,
    AccountCreatedOut,
    AccountOut,
    CaptchaOut,
    DevCaptchaAnswer,
    LoginRequest,
    LogoutRequest,
    MeOut,
    PasswordChangeRequest,
    PasswordIssued,
    PasswordResetRequest,
    RefreshRequest,
    Registered,
    RegisterRequest,
    SmsCodeAccepted,
    SmsCodeRequest,
    SubAccountCreate,
    SubAccountCreated,
    SubAccountOut,
    TokenPairOut,
)
from shared.auth.principal import Role
from shared.http.errors import FieldError, ProblemError, problem_responses
from shared.pagination import Page, Pagination

# The gateway rate-limits every /api/v1/auth/* route per client address (429 problem, Retry-After).
auth = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=problem_responses(429))
accounts = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])
dev = APIRouter(prefix="/api/v1/dev", tags=["dev"], include_in_schema=False)


@contextlib.contextmanager
def problems() -> Iterator[None]:
    """Turn a domain error into its problem+json answer (with Retry-After where there is a wait)."""
    try:
        yield
    except IdentityError as exc:
        headers: dict[str, str] = {}
        extra: dict[str, Any] = {}
        if isinstance(exc, SmsTooFrequent | AccountLocked | TooManyFailures):
            headers["Retry-After"] = str(exc.retry_after)
            extra["retry_after"] = exc.retry_after
        errors = [FieldError(field=exc.field, message=exc.message)] if isinstance(exc, FieldInvalid) else None
        raise ProblemError(exc.status, exc.code, exc.detail, errors=errors, headers=headers, extra=extra) from exc


@auth.get("/jwks", summary="令牌验签公钥（JWKS）")
async def jwks(request: Request, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    keys: dict[str, Any] = request.app.state.identity.issuer.jwks()
    return keys


@auth.get("/captcha", summary="获取图形验证码", response_model=CaptchaOut)
async def captcha(session: DbSession, ctx: Context, now: Now, response: Response) -> CaptchaOut:
    response.headers["Cache-Control"] = "no-store"
    challenge = await service.create_captcha(session=session, ctx=ctx, now=now)
    return CaptchaOut(captcha_id=challenge.captcha_id, image=challenge.image, expires_in=challenge.expires_in)


@auth.post(
    "/sms-codes",
    summary="获取短信验证码",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(400, 422, 429),
)
async def sms_codes(
    body: SmsCodeRequest, session: DbSession, ctx: Context, now: Now, client_ip: ClientIp
) -> SmsCodeAccepted:
    with problems():
        wait = await service.request_sms_code(
            session=session,
            ctx=ctx,
            phone=body.phone,
            purpose=body.purpose,
            captcha_id=body.captcha_id,
            captcha_answer=body.captcha_answer,
            client_ip=client_ip,
            now=now,
        )
    return SmsCodeAccepted(resend_after=wait)


@auth.post(
    "/register",
    summary="院校注册",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 404, 409, 422),
)
async def register(body: RegisterRequest, session: DbSession, ctx: Context, now: Now) -> Registered:
    with problems():
        issued = await service.register(
            session=session,
            ctx=ctx,
            province_code=body.province_code,
            institution_code=body.institution_code,
            phone=body.phone,
            sms_code=body.sms_code,
            now=now,
        )
    return Registered(
        account=issued.account.account,
        password=issued.password,
        institution_code=issued.account.institution_code or "",
        institution_name=issued.institution_name or "",
    )


@auth.post("/login", summary="登录", responses=problem_responses(400, 401, 422, 423, 429))
async def login(body: LoginRequest, session: DbSession, ctx: Context, now: Now, client_ip: ClientIp) -> TokenPairOut:
    with problems():
        pair = await service.login(
            session=session,
            ctx=ctx,
            account=body.account,
            password=body.password,
            captcha_id=body.captcha_id,
            captcha_answer=body.captcha_answer,
            client_ip=client_ip,
            now=now,
        )
    return _pair_out(pair)


def _pair_out(pair: service.TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        account=pair.account,
        role=pair.role,
    )


@auth.post("/refresh", summary="刷新令牌（旧的刷新令牌随即作废）", responses=problem_responses(401, 422))
async def refresh(body: RefreshRequest, session: DbSession, ctx: Context, now: Now) -> TokenPairOut:
    with problems():
        pair = await service.refresh_tokens(session=session, ctx=ctx, refresh_token=body.refresh_token, now=now)
    return _pair_out(pair)


@auth.post("/logout", summary="退出登录", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 422))
async def logout(
    principal: CurrentPrincipal, session: DbSession, now: Now, body: LogoutRequest | None = None
) -> Response:
    await service.logout(
        session=session, account_id=principal.account_id, refresh_token=body.refresh_token if body else None, now=now
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth.post(
    "/password-reset",
    summary="通过短信验证码重置密码",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 422),
)
async def password_reset(body: PasswordResetRequest, session: DbSession, ctx: Context, now: Now) -> Response:
    with problems():
        await service.reset_password(
            session=session,
            ctx=ctx,
            phone=body.phone,
            sms_code=body.sms_code,
            new_password=body.new_password,
            account=body.account,
            now=now,
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@accounts.get("/me", summary="当前账号", responses=problem_responses(401))
async def me(principal: CurrentPrincipal, session: DbSession) -> MeOut:
    try:
        account, institution_name = await service.get_account(session=session, account_id=principal.account_id)
    except AccountNotFound as exc:
        raise ProblemError(401, "unauthenticated", "账号已不存在，请重新登录。") from exc
    return MeOut(
        id=account.id,
        account=account.account,
        role=account.role,
        name=account.name,
        primary=account.is_primary,
        institution_code=account.institution_code,
        institution_name=institution_name,
        province_code=account.province_code,
        city_code=account.city_code,
        org_id=account.org_id,
        phone_masked=mask_phone(account.phone),
    )


@accounts.put(
    "/me/password",
    summary="修改密码",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 422, 423),
)
async def change_password(
    body: PasswordChangeRequest,
    principal: CurrentPrincipal,
    session: DbSession,
    ctx: Context,
    now: Now,
    client_ip: ClientIp,
) -> Response:
    with problems():
        try:
            await service.change_password(
                session=session,
                ctx=ctx,
                account_id=principal.account_id,
                old_password=body.old_password,
                new_password=body.new_password,
                client_ip=client_ip,
                now=now,
            )
        except AccountNotFound as exc:
            raise ProblemError(401, "unauthenticated", "账号已不存在，请重新登录。") from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@accounts.post(
    "/sub-accounts",
    summary="创建子账号",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
)
async def create_sub_account(
    body: SubAccountCreate, principal: SchoolPrimary, session: DbSession, now: Now
) -> SubAccountCreated:
    issued = await service.create_sub_account(
        session=session, principal=principal, name=body.name, phone=body.phone, now=now
    )
    return SubAccountCreated(id=issued.account.id, account=issued.account.account, password=issued.password)


@accounts.get("/sub-accounts", summary="子账号列表", responses=problem_responses(401, 403))
async def list_sub_accounts(principal: SchoolPrimary, session: DbSession, paging: Pagination) -> Page[SubAccountOut]:
    rows, total = await service.list_sub_accounts(
        session=session, principal=principal, offset=paging.offset, limit=paging.limit
    )
    items = [
        SubAccountOut(
            id=a.id, account=a.account, name=a.name, phone_masked=mask_phone(a.phone), created_at=a.created_at
        )
        for a in rows
    ]
    return Page.of(items, total, paging)


@accounts.delete(
    "/sub-accounts/{account_id}",
    summary="删除子账号",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
)
async def remove_sub_account(account_id: uuid.UUID, principal: SchoolPrimary, session: DbSession) -> Response:
    with problems():
        await service.remove_sub_account(session=session, principal=principal, account_id=account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@accounts.post(
    "",
    summary="创建部门、组织或运维账号",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_account(body: AccountCreate, _operator: Operator, session: DbSession, now: Now) -> AccountCreatedOut:
    with problems():
        created = await service.create_account(
            session=session,
            account=body.account,
            password=body.password,
            role=Role(body.role),
            phone=body.phone,
            name=body.name,
            province_code=body.province_code,
            city_code=body.city_code,
            org_id=body.org_id,
            now=now,
        )
    assert created is not None  # exist_ok is False: an existing account raised
    return AccountCreatedOut(id=created.id, account=created.account, role=created.role)


@accounts.get("", summary="账号列表（运维：全部；省级教育行政部门：本省）", responses=problem_responses(401, 403, 422))
async def list_accounts(
    principal: ProvinceOrOperator,
    session: DbSession,
    paging: Pagination,
    role: Annotated[Role | None, Query(description="角色")] = None,
    q: Annotated[str | None, Query(max_length=64, description="账号或名称包含")] = None,
) -> Page[AccountOut]:
    rows, total = await service.list_accounts(
        session=session, principal=principal, role=role, q=q, offset=paging.offset, limit=paging.limit
    )
    items = [
        AccountOut(
            id=a.id,
            account=a.account,
            role=a.role,
            name=a.name,
            primary=a.is_primary,
            institution_code=a.institution_code,
            province_code=a.province_code,
            city_code=a.city_code,
            org_id=a.org_id,
            phone_masked=mask_phone(a.phone),
            created_at=a.created_at,
        )
        for a in rows
    ]
    return Page.of(items, total, paging)


@accounts.post(
    "/{account}/password-reset",
    summary="重置院校账号密码（省级教育行政部门限本省）",
    responses=problem_responses(401, 403, 404),
)
async def reset_school_password(
    account: str, principal: ProvinceOrOperator, session: DbSession, now: Now
) -> PasswordIssued:
    with problems():
        issued = await service.reset_school_password(session=session, principal=principal, account=account, now=now)
    return PasswordIssued(account=issued.account.account, password=issued.password)


@dev.get("/captcha/{captcha_id}", summary="（仅开发环境）图形验证码答案")
async def dev_captcha(captcha_id: uuid.UUID, request: Request, session: DbSession) -> DevCaptchaAnswer:
    if not request.app.state.settings.is_dev:
        raise ProblemError(404)
    answer = await service.dev_captcha_answer(session=session, captcha_id=captcha_id)
    if answer is None:
        raise ProblemError(404)
    return DevCaptchaAnswer(answer=answer)


routers = [auth, accounts, dev]
