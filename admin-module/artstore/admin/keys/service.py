"""The key store: the admin's signing keys, their JWKS, and rotation.

Keys live in PostgreSQL (private halves encrypted), cached here. Every replica reloads
the cache when it meets an unknown kid and at least every ``_RELOAD`` seconds, so a
rotation on one replica reaches the others.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import jws, jwt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from artstore.admin.audit.service import Actor, Entry, record
from artstore.admin.keys import repository
from artstore.admin.keys.crypto import KeyEncryption, generate_rsa
from artstore.admin.keys.repository import SigningKeyRow
from artstore.common.errors import ServiceUnavailable, Unauthorized

_RELOAD = 30.0
_MIN_RELOAD = 1.0
# Tokens are checked with no leeway, but clocks of other services may run a little
# late: keep a retired key published this much longer than its last token lives.
RETIRE_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    jwk: dict[str, Any]
    status: str
    created_at: datetime
    retired_at: datetime | None
    verify_until: datetime | None
    private_pem: bytes | None  # only for the active key

    def published(self, now: datetime) -> bool:
        return self.status == "active" or (
            self.verify_until is not None and self.verify_until > now
        )


class KeyStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        encryption: KeyEncryption,
        access_token_ttl: int,
    ) -> None:
        self._sessions = sessions
        self._enc = encryption
        self._ttl = access_token_ttl
        self._keys: dict[str, SigningKey] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    # -- loading -----------------------------------------------------------------------
    def _from_row(self, row: SigningKeyRow) -> SigningKey:
        active = row.status == "active"
        return SigningKey(
            kid=row.kid,
            jwk=dict(row.public_jwk),
            status=row.status,
            created_at=row.created_at,
            retired_at=row.retired_at,
            verify_until=row.verify_until,
            private_pem=self._enc.decrypt(row.kid, row.private_key) if active else None,
        )

    async def reload(self) -> None:
        async with self._sessions() as session, session.begin():
            rows = await repository.all_keys(session)
        self._keys = {r.kid: self._from_row(r) for r in rows}
        self._loaded_at = time.monotonic()

    async def _new_row(self, now: datetime) -> SigningKeyRow:
        kid = f"{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
        pem, jwk = await asyncio.to_thread(generate_rsa, kid)
        return SigningKeyRow(
            kid=kid,
            private_key=self._enc.encrypt(kid, pem),
            public_jwk=jwk,
            status="active",
            created_at=now,
        )

    async def ensure_key(self) -> None:
        """At start: create the first key unless one is active (replicas take turns)."""
        async with self._sessions() as session, session.begin():
            await repository.lock(session)
            rows = await repository.all_keys(session)
            if not any(r.status == "active" for r in rows):
                await repository.insert(session, await self._new_row(datetime.now(UTC)))
        await self.reload()

    async def _maybe_reload(self, force: bool = False) -> None:
        age = time.monotonic() - self._loaded_at
        if age < _MIN_RELOAD or (not force and age < _RELOAD):
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at >= _MIN_RELOAD:
                await self.reload()

    # -- use ---------------------------------------------------------------------------
    def loaded(self) -> list[SigningKey]:
        return sorted(self._keys.values(), key=lambda k: k.created_at, reverse=True)

    async def jwks(self) -> dict[str, Any]:
        await self._maybe_reload()
        now = datetime.now(UTC)
        return {"keys": [k.jwk for k in self.loaded() if k.published(now)]}

    async def get(self, kid: str) -> dict[str, Any]:
        """KeySource for the admin's own TokenVerifier: no HTTP call to itself."""
        key = self._keys.get(kid)
        if key is None:
            try:
                await self._maybe_reload(force=True)
            except Exception as exc:  # DB away: fail closed, like an unreachable JWKS
                raise Unauthorized("token cannot be verified: key set unavailable") from exc
            key = self._keys.get(kid)
        if key is None or not key.published(datetime.now(UTC)):
            raise Unauthorized("token signed by an unknown key")
        return key.jwk

    async def sign(self, claims: dict[str, Any]) -> str:
        await self._maybe_reload()
        active = next((k for k in self.loaded() if k.status == "active"), None)
        if active is None or active.private_pem is None:
            raise ServiceUnavailable("no signing key")
        return str(
            jwt.encode(
                claims, active.private_pem.decode(), algorithm="RS256", headers={"kid": active.kid}
            )
        )

    async def sign_document(self, payload: dict[str, Any], typ: str) -> tuple[str, str]:
        """(kid, compact JWS over ``payload``) with the active key. ``typ`` names what is
        signed, and with no ``iss``/``aud``/``exp`` such a document never passes for a
        token."""
        await self._maybe_reload()
        active = next((k for k in self.loaded() if k.status == "active"), None)
        if active is None or active.private_pem is None:
            raise ServiceUnavailable("no signing key")
        signed = jws.sign(
            payload,
            active.private_pem.decode(),
            headers={"kid": active.kid, "typ": typ},
            algorithm="RS256",
        )
        return active.kid, str(signed)

    async def rotate(self, session: AsyncSession, actor: Actor) -> SigningKey:
        """A new active key; the old one stays published until its last token expired."""
        now = datetime.now(UTC)
        verify_until = now + timedelta(seconds=self._ttl) + RETIRE_MARGIN
        row = await self._new_row(now)  # before the lock: RSA generation takes a while
        async with session.begin():
            await repository.lock(session)
            retired = await repository.retire_active(session, now, verify_until)
            await repository.insert(session, row)
            await record(
                session,
                actor,
                Entry("key.rotate", "key", row.kid, details={"retired": retired}),
            )
        await self.reload()
        return self._keys[row.kid]
