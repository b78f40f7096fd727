"""The OAuth2 grants (architecture §4): access tokens, refresh-token rotation, revocation."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit.service import Actor, Entry, record
from artstore.admin.auth import repository as refresh_repo
from artstore.admin.auth.errors import OAuthError
from artstore.admin.auth.throttle import LoginThrottle, MemoryStore
from artstore.admin.keys.service import KeyStore
from artstore.admin.passwords import RateLimited
from artstore.admin.roles import ordered, scopes_for
from artstore.admin.service_accounts import service as accounts
from artstore.admin.settings import AMSettings
from artstore.admin.users import repository as users_repo
from artstore.admin.users import service as users
from artstore.admin.users.repository import UserRow
from artstore.common.auth import ALL_SCOPES
from artstore.contracts.claims import TokenClaims


@dataclass(frozen=True)
class Issued:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            out["refresh_token"] = self.refresh_token
        return out


def _hash(token: str) -> str:
    # Refresh tokens are 256 random bits: a fast hash is enough to make a stolen
    # table useless, and lookups stay an index probe.
    return hashlib.sha256(token.encode()).hexdigest()


def _narrow(granted: frozenset[str], requested: str | None) -> frozenset[str]:
    """The requested scopes, which must all be granted; none requested = all granted."""
    if not requested:
        return granted
    wanted = frozenset(requested.split())
    unknown = sorted(wanted - frozenset(ALL_SCOPES))
    if unknown:
        # Named in the answer, cut short: the request may carry anything at all.
        named = " ".join(unknown[:5])[:200]
        why = (
            " (no ID tokens are issued: this server is not an OpenID provider)"
            if "openid" in unknown
            else ""
        )
        raise OAuthError(
            "invalid_scope",
            f"unknown scope: {named}{why}; the scopes are {' '.join(ALL_SCOPES)}",
        )
    if not wanted <= granted:
        raise OAuthError("invalid_scope", f"not granted: {' '.join(ordered(wanted - granted))}")
    return wanted


def _slow_down(exc: RateLimited) -> OAuthError:
    """The token endpoint keeps RFC 6749's error shape for a 429 too: ``slow_down`` is
    the token-endpoint code registered for "ask again later" (RFC 8628 §3.5), and
    ``Retry-After`` says when (docs/security.md)."""
    error = OAuthError("slow_down", exc.message, status=429)
    error.headers = exc.headers
    return error


class Grants:
    def __init__(
        self,
        settings: AMSettings,
        keys: KeyStore,
        throttle: LoginThrottle | None = None,
        address: str = "unknown",
    ) -> None:
        self.settings = settings
        self.keys = keys
        # Sign-in budgets (throttle.py); None only where no client is asking (tests of parts).
        self.throttle = throttle or LoginThrottle(settings, MemoryStore())
        self.address = address

    async def _access_token(
        self, sub: str, kind: str, name: str, scopes: frozenset[str], roles: list[str] | None
    ) -> tuple[str, str]:
        issued = time.time()
        now = int(issued)
        scope = " ".join(ordered(scopes))
        claims = TokenClaims(
            iss=self.settings.issuer,
            aud=self.settings.jwt_audience,
            sub=sub,
            # To the millisecond (RFC 7519 allows fractions): a per-subject revocation
            # (revocations.py) then ends the tokens issued before it, not those right after.
            iat=math.floor(issued * 1000) / 1000,
            nbf=now,
            exp=now + self.settings.access_token_ttl,
            jti=uuid.uuid4().hex,
            scope=scope,
            kind=kind,
            name=name,
            roles=tuple(roles) if roles is not None else None,
        )
        return await self.keys.sign(claims.to_claims()), scope

    async def user_tokens(
        self, session: AsyncSession, user: UserRow, scopes: frozenset[str], family: str | None
    ) -> Issued:
        access, scope = await self._access_token(
            user.username,
            "user",
            user.full_name or user.username,
            scopes,
            list(user.roles),
        )
        refresh = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        await refresh_repo.insert(
            session,
            {
                "id": str(uuid.uuid4()),
                "token_hash": _hash(refresh),
                "family_id": family or str(uuid.uuid4()),
                "user_id": user.id,
                "scope": scope,
                "created_at": now,
                "expires_at": now + timedelta(seconds=self.settings.refresh_token_ttl),
            },
        )
        return Issued(access, self.settings.access_token_ttl, scope, refresh)

    async def password(
        self, session: AsyncSession, username: str, password: str, scope: str | None
    ) -> Issued:
        try:
            user = await users.login(session, self.throttle, username, password, self.address)
        except RateLimited as exc:
            raise _slow_down(exc) from None
        scopes = _narrow(scopes_for(user.roles), scope)
        async with session.begin():
            return await self.user_tokens(session, user, scopes, None)

    async def client_credentials(
        self, session: AsyncSession, client_id: str, secret: str, scope: str | None
    ) -> Issued:
        try:
            budget = await self.throttle.begin_client(self.address)
            account = await accounts.authenticate(session, client_id, secret)
        except RateLimited as exc:
            raise _slow_down(exc) from None
        await self.throttle.client_succeeded(budget)
        scopes = _narrow(frozenset(account.scopes), scope)
        access, granted = await self._access_token(
            account.client_id, "service_account", account.name, scopes, None
        )
        return Issued(access, self.settings.access_token_ttl, granted)

    async def refresh(self, session: AsyncSession, token: str, scope: str | None) -> Issued:
        now = datetime.now(UTC)
        reused = False
        async with session.begin():
            row = await refresh_repo.by_hash(session, _hash(token))
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                raise OAuthError("invalid_grant", "refresh token is invalid or expired")
            user = await users_repo.get(session, row.user_id)
            if row.used_at is not None:
                # A rotated token came back: someone holds a copy. End the whole family.
                await refresh_repo.revoke_family(session, row.family_id, now)
                await record(
                    session,
                    Actor(user.username if user else "unknown", "anonymous"),
                    Entry(
                        "login.failure",
                        "user",
                        row.user_id,
                        outcome="failure",
                        details={"grant": "refresh_token", "reason": "refresh token reused"},
                    ),
                )
                reused = True
            elif user is None or user.status != "active":
                raise OAuthError("invalid_grant", "account disabled")
            else:
                # The family keeps the scope it started with; roles removed since then
                # narrow it, roles added do not widen it.
                granted = scopes_for(user.roles) & frozenset(row.scope.split())
                scopes = _narrow(granted, scope)
                await refresh_repo.mark_used(session, row.id, now)
                return await self.user_tokens(session, user, scopes, row.family_id)
        assert reused
        raise OAuthError("invalid_grant", "refresh token was already used; its family is revoked")

    async def revoke(self, session: AsyncSession, token: str) -> None:
        """RFC 7009: revoke a refresh token's family; anything else is accepted silently."""
        async with session.begin():
            row = await refresh_repo.by_hash(session, _hash(token))
            if row is not None:
                await refresh_repo.revoke_family(session, row.family_id, datetime.now(UTC))
