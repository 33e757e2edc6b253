"""Token verification against a JWKS that changes: a new key is picked up at once, a withdrawn one
stops verifying once the cached keys are older than their maximum age, an unreachable JWKS keeps
the keys already known."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.auth.keys import TokenIssuer
from shared.auth.principal import Principal, Role
from shared.auth.verifier import InvalidToken, TokenVerifier
from shared.testing.tokens import TestTokens

SCHOOL = Principal(account_id="a-1", account="4145010867", role=Role.institution, institution_code="4145010867")


def issuer() -> TokenIssuer:
    """A signing key of its own, as identity has before and after a rotation."""
    return TestTokens().issuer


class ChangingJwks:
    def __init__(self, *issuers: TokenIssuer) -> None:
        self.published = list(issuers)
        self.down = False
        self.fetches = 0

    async def __call__(self) -> dict[str, Any]:
        self.fetches += 1
        if self.down:
            raise ConnectionError("identity unreachable")
        return {"keys": [key for i in self.published for key in i.jwks()["keys"]]}


async def test_a_withdrawn_key_stops_verifying_after_the_maximum_age() -> None:
    old, new = issuer(), issuer()
    jwks = ChangingJwks(old)
    verifier = TokenVerifier(
        source=jwks, issuer="onex-identity", audience="onex", min_refresh_seconds=0, max_age_seconds=0.2
    )
    assert (await verifier.verify(old.issue(SCHOOL))).account == "4145010867"
    jwks.published = [new]
    assert (await verifier.verify(new.issue(SCHOOL))).role is Role.institution  # unknown kid: fetched at once
    await asyncio.sleep(0.3)
    with pytest.raises(InvalidToken):
        await verifier.verify(old.issue(SCHOOL))


async def test_an_unreachable_jwks_keeps_the_known_keys() -> None:
    key = issuer()
    jwks = ChangingJwks(key)
    verifier = TokenVerifier(
        source=jwks, issuer="onex-identity", audience="onex", min_refresh_seconds=0, max_age_seconds=0.1
    )
    await verifier.verify(key.issue(SCHOOL))
    jwks.down = True
    await asyncio.sleep(0.2)
    assert (await verifier.verify(key.issue(SCHOOL))).account == "4145010867"
    assert jwks.fetches >= 2, "the stale keys were due for a refresh"
