"""Mint access tokens for any role in tests; services verify them exactly as in production."""

from __future__ import annotations

import uuid
from typing import Any

from shared.auth.keys import SigningKey, TokenIssuer, generate_private_pem
from shared.auth.principal import Principal, Role
from shared.auth.verifier import TokenVerifier, static_jwks

ISSUER, AUDIENCE = "onex-identity", "onex"


class TestTokens:
    __test__ = False

    def __init__(self) -> None:
        self.issuer = TokenIssuer(current=SigningKey.from_pem(generate_private_pem()), issuer=ISSUER, audience=AUDIENCE)

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(source=static_jwks(self.issuer.jwks()), issuer=ISSUER, audience=AUDIENCE)

    def principal(self, role: Role | str, **scope: Any) -> Principal:
        role = Role(role)
        return Principal(
            account_id=str(scope.pop("account_id", uuid.uuid4())),
            account=scope.pop("account", f"{role.value}-{uuid.uuid4().hex[:6]}"),
            role=role,
            **scope,
        )

    def token(self, role: Role | str, **scope: Any) -> str:
        return self.issuer.issue(self.principal(role, **scope))

    def headers(self, role: Role | str, **scope: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, **scope)}"}
