"""Local verification of access tokens against identity's JWKS: fetched once, refreshed when an
unknown key id appears (a new key after rotation; at most every few seconds) and when the keys are
older than `max_age_seconds` (so a key identity withdrew stops verifying within that time)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from shared.auth.keys import ALGORITHM
from shared.auth.principal import Principal, Role
from shared.logging import get_logger

log = get_logger("auth")
JwksSource = Callable[[], Awaitable[dict[str, Any]]]


class InvalidToken(Exception):
    pass


def jwks_from_url(url: str, *, timeout: float = 3.0) -> JwksSource:
    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data

    return fetch


def static_jwks(jwks: dict[str, Any]) -> JwksSource:
    async def fetch() -> dict[str, Any]:
        return jwks

    return fetch


class TokenVerifier:
    def __init__(
        self,
        *,
        source: JwksSource,
        issuer: str,
        audience: str,
        min_refresh_seconds: float = 5.0,
        max_age_seconds: float = 300.0,  # identity's JWKS answer is cacheable for as long
    ) -> None:
        self.source = source
        self.issuer = issuer
        self.audience = audience
        self.min_refresh_seconds = min_refresh_seconds
        self.max_age_seconds = max_age_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self.min_refresh_seconds and self._keys:
                return
            try:
                jwks = await self.source()
            except Exception as exc:
                log.warning("jwks_fetch_failed", error=str(exc))
                return
            finally:
                self._fetched_at = time.monotonic()
            self._keys = {k["kid"]: PyJWK(k).key for k in jwks.get("keys", []) if "kid" in k}

    async def _key_for(self, kid: str) -> Any:
        # A failed fetch keeps the keys it had: identity being down must not log everybody out.
        if kid not in self._keys or time.monotonic() - self._fetched_at > self.max_age_seconds:
            await self._refresh()
        if kid not in self._keys:
            raise InvalidToken("unknown signing key")
        return self._keys[kid]

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            key = await self._key_for(str(header.get("kid", "")))
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        scope = claims.get("scope") or {}
        try:
            return Principal(
                account_id=str(claims["sub"]),
                account=str(claims.get("account", "")),
                role=Role(claims["role"]),
                **{k: scope.get(k) for k in ("institution_code", "province_code", "city_code", "org_id")},
            )
        except (KeyError, ValueError) as exc:
            raise InvalidToken("malformed claims") from exc
