"""Argon2id hashing of passwords and client secrets, always off the event loop."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) defaults

# Verified against when the account does not exist, so the answer takes as long as a
# real check and does not tell which usernames exist.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 12


async def hash_secret(secret: str) -> str:
    return await asyncio.to_thread(_hasher.hash, secret)


def _verify(hashed: str, secret: str) -> bool:
    try:
        return _hasher.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


async def verify_secret(hashed: str | None, secret: str) -> bool:
    if hashed is None:
        await asyncio.to_thread(_verify, _DUMMY, secret)
        return False
    return await asyncio.to_thread(_verify, hashed, secret)


def new_secret() -> str:
    return secrets.token_urlsafe(32)
