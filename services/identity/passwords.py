"""Password hashing (argon2id, m=19456 KiB, t=2, p=1) and the shipped list of common passwords."""

from __future__ import annotations

import asyncio
import functools
import gzip
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt.gz"

HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)
# Verified when the account does not exist, so that answering takes as long as for a real account.
_DUMMY_HASH = HASHER.hash("onex-dummy-password-for-timing")


@functools.cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


async def hash_password(password: str) -> str:
    """Hash off the event loop: argon2 costs tens of milliseconds of CPU by design."""
    return await asyncio.to_thread(HASHER.hash, password)


def _verify(stored_hash: str | None, password: str) -> bool:
    try:
        return HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no stored hash, spend the same time and answer False."""
    return await asyncio.to_thread(_verify, stored_hash, password)
