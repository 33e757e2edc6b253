"""Identity's signing keys: the current one (PEM text or file) and the previous ones still published
in the JWKS after a rotation. In dev a missing key is generated once into a file shared by instances."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from services.identity.config import IdentitySettings
from shared.auth.keys import SigningKey, TokenIssuer, generate_private_pem
from shared.auth.verifier import TokenVerifier, static_jwks
from shared.config import secret_value

PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.DOTALL)


class MissingSigningKey(RuntimeError):
    pass


def _pem_texts(value: str) -> list[str]:
    """PEM blocks written inline, else comma-separated paths to PEM files."""
    value = value.strip()
    if not value:
        return []
    blocks = PEM_BLOCK.findall(value)
    if blocks:
        return list(blocks)
    return [Path(p.strip()).read_text() for p in value.split(",") if p.strip()]


def ensure_dev_key(path: Path) -> str:
    """Read the dev key file, creating it atomically first if absent (several instances may race)."""
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per caller, not just per process: threads of one process race for the key too.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(generate_private_pem())
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # fails if another instance won the race: then its key is the one
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path.read_text()


def current_pem(settings: IdentitySettings) -> str:
    configured = _pem_texts(secret_value(settings.signing_key))
    if configured:
        return configured[0]
    if not settings.is_dev:
        raise MissingSigningKey("IDENTITY_SIGNING_KEY is required outside dev")
    return ensure_dev_key(Path(settings.dev_key_file))


def build_issuer(settings: IdentitySettings) -> TokenIssuer:
    current = SigningKey.from_pem(current_pem(settings))
    previous = [SigningKey.from_pem(pem) for pem in _pem_texts(secret_value(settings.previous_signing_keys))]
    return TokenIssuer(
        current=current,
        previous=[k for k in previous if k.kid != current.kid],
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=timedelta(seconds=settings.access_ttl_seconds),
    )


def own_verifier(issuer: TokenIssuer) -> TokenVerifier:
    """Identity verifies its own tokens with its own keyring, without fetching its JWKS over HTTP."""
    return TokenVerifier(source=static_jwks(issuer.jwks()), issuer=issuer.issuer, audience=issuer.audience)


def hmac_key(settings: IdentitySettings, issuer: TokenIssuer) -> bytes:
    """The configured HMAC key, else one derived from the signing key (shared by all instances)."""
    configured = secret_value(settings.hmac_key)
    if configured:
        return configured.encode()
    raw = issuer.current.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hashlib.sha256(b"onex-identity-hmac:" + raw).digest()
