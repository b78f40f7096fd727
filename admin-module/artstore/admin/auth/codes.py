"""Authorization codes with PKCE for the console (RFC 6749 §4.1, RFC 7636; issue 17).

The console is a public client (no secret): what proves the caller of the token
endpoint is the one that started the sign-in is the PKCE verifier, so only ``S256`` is
accepted. A code is 256 random bits, stored as its SHA-256, bound to the client, the
redirect URI and the challenge, valid ``AM_AUTHORIZATION_CODE_TTL`` (≤ 60) seconds and
usable once: any failed redemption consumes it too (no second guess at a verifier), and
a code that comes back after a success revokes the refresh family issued from it
(RFC 6749 §4.1.2). Its access token, a JWT, lives out its 15 minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit.service import Actor, Entry, record
from artstore.admin.auth import code_repository as codes_repo
from artstore.admin.auth import repository as refresh_repo
from artstore.admin.auth.errors import OAuthError
from artstore.admin.auth.service import Grants, Issued
from artstore.admin.roles import scopes_for
from artstore.admin.users import repository as users_repo
from artstore.admin.users.repository import UserRow

CONSOLE = "console"
GRANT = "authorization_code"
# RFC 7636 §4.1: 43 to 128 unreserved characters; an S256 challenge is 43 base64url ones.
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
# A used code is kept this long past its expiry so that its reuse is still recognized.
KEEP_USED = timedelta(days=1)


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def issue(
    session: AsyncSession,
    ttl: int,
    user: UserRow,
    scopes: frozenset[str],
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
) -> str:
    code = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    async with session.begin():
        await codes_repo.delete_expired(session, now - KEEP_USED)
        await codes_repo.insert(
            session,
            {
                "code_hash": _hash(code),
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "code_challenge": code_challenge,
                "user_id": user.id,
                "scope": " ".join(sorted(scopes)),
                "family_id": None,
                "created_at": now,
                "expires_at": now + timedelta(seconds=ttl),
            },
        )
    return code


def _param(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"missing parameter: {name}")
    return value


def public_client(form: dict[str, str], basic: tuple[str, str] | None) -> str:
    """The client of a code redemption: ``client_id`` in the form (RFC 6749 §4.1.3), or
    Basic credentials with an empty secret (what some clients send for a public client)."""
    if basic is not None:
        client_id, secret = basic
        if secret or client_id != CONSOLE or form.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_client", "the console is a public client: no secret")
    else:
        if form.get("client_secret"):
            raise OAuthError("invalid_client", "the console is a public client: no secret")
        client_id = _param(form, "client_id")
    if client_id != CONSOLE:
        raise OAuthError("invalid_client", "unknown client for the authorization_code grant")
    return client_id


async def redeem(
    grants: Grants, session: AsyncSession, form: dict[str, str], client_id: str
) -> Issued:
    code = _param(form, "code")
    redirect_uri = _param(form, "redirect_uri")
    verifier = _param(form, "code_verifier")
    if not VERIFIER.fullmatch(verifier):
        raise OAuthError("invalid_request", "code_verifier must be 43-128 unreserved characters")
    now = datetime.now(UTC)
    failure: str | None = None
    async with session.begin():
        row = await codes_repo.by_hash(session, _hash(code))
        if row is None:
            raise OAuthError("invalid_grant", "authorization code is invalid or expired")
        if row.used_at is not None:
            # The code came back: someone else may hold it. End what it gave.
            if row.family_id is not None:
                await refresh_repo.revoke_family(session, row.family_id, now)
            await record(
                session,
                Actor("unknown", "anonymous"),
                Entry(
                    "login.failure",
                    "user",
                    row.user_id,
                    outcome="failure",
                    details={"grant": GRANT, "reason": "authorization code reused"},
                ),
            )
            failure = "authorization code was already used; the tokens issued from it are revoked"
        elif row.expires_at <= now:
            failure = "authorization code is invalid or expired"
        elif row.client_id != client_id:
            failure = "authorization code was issued to another client"
        elif row.redirect_uri != redirect_uri:
            failure = "redirect_uri differs from the authorization request's"
        elif not hmac.compare_digest(s256(verifier), row.code_challenge):
            failure = "code_verifier does not match the code_challenge"
        if failure is None:
            user = await users_repo.get(session, row.user_id)
            scopes: frozenset[str] = frozenset()
            if user is None or user.status != "active":
                failure = "account disabled"
            else:
                # Roles removed since the sign-in narrow the grant; none left: refused.
                scopes = scopes_for(user.roles) & frozenset(row.scope.split())
                if not scopes:
                    failure = "the user no longer holds any of the granted scopes"
        if failure is not None:
            if row.used_at is None:
                await codes_repo.mark_used(session, row.code_hash, now, None)  # consumed
        else:
            assert user is not None
            family = str(uuid.uuid4())
            issued = await grants.user_tokens(session, user, scopes, family)
            await codes_repo.mark_used(session, row.code_hash, now, family)
    if failure is not None:
        raise OAuthError("invalid_grant", failure)
    return issued
