"""Service-account use cases: CRUD, secrets (shown once, stored hashed), client login.

Suspending, deleting, taking scopes away from or rotating the secret of an account also
revokes its access tokens (auth/revocations.py): the entry is returned for the route to
announce after the commit."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit.service import Actor, Entry, record
from artstore.admin.auth import revocations
from artstore.admin.auth.errors import OAuthError
from artstore.admin.passwords import hash_secret, new_secret, verify_secret
from artstore.admin.roles import ordered
from artstore.admin.service_accounts import repository as repo
from artstore.admin.service_accounts.repository import ServiceAccountRow
from artstore.admin.service_accounts.schemas import ServiceAccountCreate, ServiceAccountPatch
from artstore.admin.settings import AMSettings
from artstore.common.errors import NotFound, ValidationFailed


def _missing(sa_id: str) -> NotFound:
    return NotFound(f"service account {sa_id} not found", details={"id": sa_id})


async def create(
    session: AsyncSession, actor: Actor, body: ServiceAccountCreate, ttl_days: int
) -> tuple[ServiceAccountRow, str]:
    """(row, client secret): the secret exists in clear only in this answer."""
    now = datetime.now(UTC)
    secret = new_secret()
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "client_id": f"sa_{body.name}_{secrets.token_hex(4)}",
        "name": body.name,
        "description": body.description,
        "scopes": body.scopes,
        "status": "active",
        "secret_hash": await hash_secret(secret),
        "secret_expires_at": now + timedelta(days=ttl_days),
        "created_at": now,
        "updated_at": now,
    }
    async with session.begin():
        await repo.insert(session, row)
        await record(
            session,
            actor,
            Entry(
                "service_account.create",
                "service_account",
                row["id"],
                details={"client_id": row["client_id"], "scopes": body.scopes},
            ),
        )
        return await _existing(session, row["id"]), secret


async def _existing(
    session: AsyncSession, sa_id: str, *, for_update: bool = False
) -> ServiceAccountRow:
    row = await repo.get(session, sa_id, for_update=for_update)
    if row is None:
        raise _missing(sa_id)
    return row


async def get(session: AsyncSession, sa_id: str) -> ServiceAccountRow:
    async with session.begin():
        return await _existing(session, sa_id)


async def by_name(session: AsyncSession, name: str) -> ServiceAccountRow | None:
    async with session.begin():
        return await repo.by_name(session, name)


async def by_client_id(session: AsyncSession, client_id: str) -> ServiceAccountRow | None:
    async with session.begin():
        return await repo.by_client_id(session, client_id)


async def page(
    session: AsyncSession, limit: int, offset: int
) -> tuple[list[ServiceAccountRow], int]:
    async with session.begin():
        return await repo.page(session, limit, offset)


def _ends_tokens(before: ServiceAccountRow, values: dict[str, Any]) -> bool:
    """Suspended, or scopes taken away: tokens carry the scopes they were issued with.
    Scopes added or a new name or description leave the tokens as good as they were."""
    suspended = values.get("status") == "suspended" and before.status != "suspended"
    narrowed = "scopes" in values and not set(before.scopes) <= set(values["scopes"])
    return suspended or narrowed


async def patch(
    session: AsyncSession,
    actor: Actor,
    settings: AMSettings,
    sa_id: str,
    body: ServiceAccountPatch,
) -> tuple[ServiceAccountRow, dict[str, Any] | None]:
    """(the row, the revocation entry to announce after the commit, if any)."""
    values = body.model_dump(exclude_unset=True)
    if not values:
        raise ValidationFailed("nothing to change")
    nulls = [
        k for k in ("name", "scopes", "status", "description") if k in values and values[k] is None
    ]
    if nulls:
        raise ValidationFailed("fields cannot be null", details={"fields": nulls})
    revoked: dict[str, Any] | None = None
    async with session.begin():
        before = await _existing(session, sa_id, for_update=True)
        if _ends_tokens(before, values):
            revoked = await revocations.revoke(session, settings, before.client_id)
        row = await repo.update(session, sa_id, {**values, "updated_at": datetime.now(UTC)})
        assert row is not None  # locked above
        details: dict[str, Any] = {"fields": sorted(values)}
        if revoked is not None:
            details["tokens_revoked"] = True
        entry = Entry("service_account.update", "service_account", sa_id, details=details)
        await record(session, actor, entry)
        return row, revoked


async def delete(
    session: AsyncSession, actor: Actor, settings: AMSettings, sa_id: str
) -> dict[str, Any]:
    """The revocation entry to announce after the commit."""
    async with session.begin():
        row = await _existing(session, sa_id, for_update=True)
        await repo.delete(session, sa_id)
        revoked = await revocations.revoke(session, settings, row.client_id)
        await record(
            session,
            actor,
            Entry(
                "service_account.delete",
                "service_account",
                sa_id,
                details={"client_id": row.client_id, "tokens_revoked": True},
            ),
        )
        return revoked


async def rotate_secret(
    session: AsyncSession, actor: Actor, settings: AMSettings, sa_id: str
) -> tuple[ServiceAccountRow, str, dict[str, Any]]:
    """(row, new secret, revocation entry): a rotation is what follows a leaked secret,
    so the tokens got with the old one end too."""
    secret = new_secret()
    secret_hash = await hash_secret(secret)
    now = datetime.now(UTC)
    async with session.begin():
        before = await _existing(session, sa_id, for_update=True)
        row = await repo.update(
            session,
            sa_id,
            {
                "secret_hash": secret_hash,
                "secret_expires_at": now + timedelta(days=settings.sa_secret_ttl_days),
                "updated_at": now,
            },
        )
        assert row is not None  # locked above
        revoked = await revocations.revoke(session, settings, before.client_id)
        await record(
            session,
            actor,
            Entry(
                "service_account.rotate_secret",
                "service_account",
                sa_id,
                details={"tokens_revoked": True},
            ),
        )
        return row, secret, revoked


async def grant_scopes(
    session: AsyncSession, actor: Actor, name: str, scopes: list[str], reason: str
) -> list[str]:
    """Add whichever of ``scopes`` the account ``name`` lacks (none removed), audited with
    ``reason``; the scopes added (none: nothing written). Adding never revokes: tokens
    issued before hold fewer scopes, not more."""
    async with session.begin():
        row = await repo.by_name(session, name, for_update=True)
        if row is None:
            return []
        added = ordered(set(scopes) - set(row.scopes))
        if not added:
            return []
        values = {"scopes": ordered({*row.scopes, *added}), "updated_at": datetime.now(UTC)}
        await repo.update(session, row.id, values)
        details = {"fields": ["scopes"], "added": added, "reason": reason}
        entry = Entry("service_account.update", "service_account", row.id, details=details)
        await record(session, actor, entry)
        return added


async def authenticate(session: AsyncSession, client_id: str, secret: str) -> ServiceAccountRow:
    """The account's row, or invalid_client (unknown, wrong secret, suspended, expired)."""
    now = datetime.now(UTC)
    async with session.begin():
        row = await repo.by_client_id(session, client_id)
        ok = await verify_secret(row.secret_hash if row else None, secret)
        failure: str | None = None
        if row is None or not ok:
            failure = "invalid client credentials"
        elif row.status != "active":
            failure = "client suspended"
        elif row.secret_expires_at <= now:
            failure = "client secret expired"
        await record(
            session,
            Actor(client_id, "anonymous" if failure else "service_account"),
            Entry(
                "login.failure" if failure else "login.success",
                "service_account",
                row.id if row is not None else None,
                outcome="failure" if failure else "success",
                details={"grant": "client_credentials", **({"reason": failure} if failure else {})},
            ),
        )
    if failure is not None or row is None:
        raise OAuthError("invalid_client", failure or "invalid client credentials")
    return row
