"""Ed25519 signing keys for access tokens, with rotation: the previous key stays published in the
JWKS until every token it signed has expired."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.auth.principal import Principal

ALGORITHM = "EdDSA"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def generate_private_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_jwk(public_key: Ed25519PublicKey, kid: str) -> dict[str, str]:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": kid, "use": "sig", "alg": ALGORITHM}


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    kid: str

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("signing key must be Ed25519")
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(private_key=key, kid=hashlib.sha256(raw).hexdigest()[:16])

    @property
    def jwk(self) -> dict[str, str]:
        return public_jwk(self.private_key.public_key(), self.kid)


class TokenIssuer:
    """Signs access tokens with the current key; publishes current and previous public keys."""

    def __init__(
        self,
        *,
        current: SigningKey,
        previous: list[SigningKey] | None = None,
        issuer: str,
        audience: str,
        ttl: timedelta = timedelta(minutes=15),
    ) -> None:
        self.current = current
        self.previous = previous or []
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl

    def issue(self, principal: Principal, *, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": principal.account_id,
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(self.ttl.total_seconds()),
            "jti": uuid.uuid4().hex,
            "account": principal.account,
            "role": principal.role.value,
            "scope": {k: v for k, v in principal.scope_claims().items() if v is not None},
        }
        return jwt.encode(claims, self.current.private_key, algorithm=ALGORITHM, headers={"kid": self.current.kid})

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.current.jwk, *(k.jwk for k in self.previous)]}
