"""OAuth 2.0 Token Exchange (RFC 8693): tokens bound to one storage element (architecture §10).

A service that acts for a caller towards an SE (ingester, query module) trades the
caller's access token for one whose ``aud`` is that SE's ``storage_id``: same ``sub``,
``kind``, ``name`` and ``roles``, scopes no wider than the caller's, ``act`` naming the
service, a lifetime of at most :data:`MAX_LIFETIME` and never past the caller's own
token. Only that SE accepts it, so an SE (a rogue one included) never holds a token that
the admin or another SE would take.

The admin itself, which acts towards SEs too (mode changes, deleting a file everywhere),
mints the same kind of token directly (:func:`bound_for`): it is the issuer.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from jose import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.auth.errors import OAuthError
from artstore.admin.auth.service import Issued
from artstore.admin.keys.service import KeyStore
from artstore.admin.roles import ordered
from artstore.admin.service_accounts import service as accounts
from artstore.admin.settings import AMSettings
from artstore.admin.storage_elements import repository as se_repo
from artstore.common.auth import Principal, TokenVerifier
from artstore.common.errors import Unauthorized
from artstore.contracts.claims import TokenClaims

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
JWT_TOKEN = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a URN
MAX_LIFETIME = 300
# Who acts when the admin forwards a caller's request to an SE itself.
ADMIN_ACTOR = "artstore-admin"
# Exchanging needs this scope (architecture §10): a service trusted to act towards SEs.
EXCHANGE_SCOPE = "storage:write"


@dataclass(frozen=True)
class Exchanged(Issued):
    def body(self) -> dict[str, Any]:
        # RFC 8693 §2.2.1: issued_token_type is required; no refresh token is issued.
        return {**super().body(), "issued_token_type": ACCESS_TOKEN}


async def _sign(
    settings: AMSettings,
    keys: KeyStore,
    subject: TokenClaims,
    storage_id: str,
    scopes: frozenset[str],
    actor: str,
) -> tuple[str, int, str]:
    """(token, lifetime, scope) for ``subject``'s claims bound to ``storage_id``."""
    issued = time.time()
    now = int(issued)
    expires = subject.exp if subject.exp is not None else now  # verified: never None
    life = min(MAX_LIFETIME, settings.access_token_ttl, expires - now)
    if life <= 0:
        raise OAuthError("invalid_grant", "the subject token has expired")
    scope = " ".join(ordered(scopes))
    claims = TokenClaims(
        iss=settings.issuer,
        aud=storage_id,
        sub=subject.sub,
        # To the millisecond, as every token (service.py): revocations compare it.
        iat=math.floor(issued * 1000) / 1000,
        nbf=now,
        exp=now + life,
        jti=uuid.uuid4().hex,
        scope=scope,
        kind=subject.kind,
        name=subject.name,
        roles=subject.roles,
        act=actor,
    )
    return await keys.sign(claims.to_claims()), life, scope


def _subject_claims(principal: Principal) -> TokenClaims:
    # The token was verified (signature, times, issuer, audience) into ``principal``:
    # its claims can be read as they are.
    return TokenClaims.from_claims(jwt.get_unverified_claims(principal.token))


async def _registered(session: AsyncSession, settings: AMSettings, audience: str) -> None:
    if audience == settings.jwt_audience:
        raise OAuthError("invalid_target", "the audience must be one storage element's id")
    async with session.begin():
        row = await se_repo.get(session, audience)
    if row is None:
        raise OAuthError("invalid_target", "no storage element is registered with that id")


def _one(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"missing parameter: {name}")
    return value


async def exchange(
    session: AsyncSession,
    settings: AMSettings,
    keys: KeyStore,
    verifier: TokenVerifier,
    client: tuple[str, str],
    form: dict[str, str],
) -> Exchanged:
    """The grant of ``POST /api/v1/auth/token`` (RFC 8693 §2.1, RFC 6749 errors)."""
    subject_token = _one(form, "subject_token")
    if _one(form, "subject_token_type") not in (ACCESS_TOKEN, JWT_TOKEN):
        raise OAuthError("invalid_request", "subject_token_type must be an access token")
    if form.get("requested_token_type", ACCESS_TOKEN) != ACCESS_TOKEN:
        raise OAuthError("invalid_request", "only access tokens are issued")
    if "actor_token" in form:
        raise OAuthError("invalid_request", "the actor is the authenticated client")
    if "resource" in form:
        raise OAuthError("invalid_target", "name the storage element in audience")
    audience = _one(form, "audience")
    account = await accounts.authenticate(session, *client)
    if EXCHANGE_SCOPE not in account.scopes:
        raise OAuthError(
            "unauthorized_client", f"exchanging tokens needs a client with {EXCHANGE_SCOPE}"
        )
    await _registered(session, settings, audience)
    try:
        principal = await verifier.verify(subject_token)
    except Unauthorized as exc:
        raise OAuthError("invalid_grant", f"subject_token: {exc.message}") from None
    if principal.act is not None:
        raise OAuthError("invalid_grant", "an exchanged token cannot be exchanged again")
    scopes = principal.scopes
    if form.get("scope"):
        scopes = scopes & frozenset(form["scope"].split())
        if not scopes:
            raise OAuthError("invalid_scope", "none of the requested scopes is the subject's")
    token, life, scope = await _sign(
        settings, keys, _subject_claims(principal), audience, scopes, account.client_id
    )
    return Exchanged(token, life, scope)


async def bound_for(
    settings: AMSettings, keys: KeyStore, principal: Principal, storage_id: str
) -> str:
    """A token for ``storage_id`` acting for ``principal`` (the admin forwarding a
    caller's request): the same claims :func:`exchange` would give."""
    try:
        token, _, _ = await _sign(
            settings, keys, _subject_claims(principal), storage_id, principal.scopes, ADMIN_ACTOR
        )
    except OAuthError:
        raise Unauthorized("the token has expired") from None
    return token
