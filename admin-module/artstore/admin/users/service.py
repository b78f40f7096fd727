"""User use cases: CRUD, the last admin, revocation, unlock, passwords, login."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit.service import Actor, Entry, record
from artstore.admin.auth import repository as refresh_repo
from artstore.admin.auth import revocations
from artstore.admin.auth.errors import OAuthError
from artstore.admin.auth.throttle import LoginThrottle
from artstore.admin.passwords import RateLimited, hash_secret, verify_password
from artstore.admin.settings import AMSettings
from artstore.admin.users import repository as repo
from artstore.admin.users.repository import UserRow
from artstore.admin.users.schemas import UserCreate, UserPatch
from artstore.common.errors import Conflict, NotFound, ValidationFailed


def _missing(user_id: str) -> NotFound:
    return NotFound(f"user {user_id} not found", details={"id": user_id})


async def create(session: AsyncSession, actor: Actor, body: UserCreate) -> UserRow:
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "username": body.username,
        "email": body.email,
        "full_name": body.full_name,
        "roles": body.roles,
        "status": "active",
        "password_hash": await hash_secret(body.password),
        "failed_logins": 0,
        "created_at": now,
        "updated_at": now,
    }
    async with session.begin():
        await repo.insert(session, row)
        await record(
            session,
            actor,
            Entry("user.create", "user", row["id"], details={"username": body.username}),
        )
        return await _existing(session, row["id"])


async def _existing(session: AsyncSession, user_id: str, *, for_update: bool = False) -> UserRow:
    row = await repo.get(session, user_id, for_update=for_update)
    if row is None:
        raise _missing(user_id)
    return row


async def get(session: AsyncSession, user_id: str) -> UserRow:
    async with session.begin():
        return await _existing(session, user_id)


async def by_username(session: AsyncSession, username: str) -> UserRow | None:
    async with session.begin():
        return await repo.by_username(session, username)


async def page(session: AsyncSession, limit: int, offset: int) -> tuple[list[UserRow], int]:
    async with session.begin():
        return await repo.page(session, limit, offset)


def _demotes(row: UserRow, values: dict[str, Any]) -> bool:
    """Would this change leave ``row`` no longer an active admin?"""
    if row.status != "active" or "admin" not in row.roles:
        return False
    return values.get("status") == "disabled" or (
        "roles" in values and "admin" not in values["roles"]
    )


def _keep_an_admin(admins: list[str], user_id: str, what: str) -> None:
    """409 when ``user_id`` is the last active admin (no one could administer then);
    ``admins`` is :func:`repo.lock_active_admins`, read before the target's row."""
    if admins == [user_id]:
        raise Conflict(
            f"the last active admin cannot be {what}; make another user an admin first",
            details={"id": user_id},
        )


async def patch(
    session: AsyncSession, actor: Actor, settings: AMSettings, user_id: str, body: UserPatch
) -> tuple[UserRow, dict[str, Any] | None]:
    """(the row, the revocation entry to announce after the commit, if any)."""
    values: dict[str, Any] = body.model_dump(exclude_unset=True)
    if not values:
        raise ValidationFailed("nothing to change")
    if "roles" in values and values["roles"] is None:
        raise ValidationFailed("roles cannot be null", details={"field": "roles"})
    now = datetime.now(UTC)
    revoked: dict[str, Any] | None = None
    async with session.begin():
        touches = "status" in values or "roles" in values
        admins = await repo.lock_active_admins(session) if touches else []
        before = await _existing(session, user_id, for_update=True)
        if _demotes(before, values):
            _keep_an_admin(admins, user_id, "disabled or demoted")
        if values.get("status") == "active":
            values.update(failed_logins=0, locked_until=None)  # re-enabling also unlocks
        if values.get("status") == "disabled":
            await refresh_repo.revoke_user(session, user_id, now)
        disabled = values.get("status") == "disabled" and before.status != "disabled"
        new_roles = "roles" in values and list(values["roles"]) != list(before.roles)
        if disabled or new_roles:
            # Tokens carry the roles and scopes they were issued with: end them all.
            revoked = await revocations.revoke(session, settings, before.username)
        row = await repo.update(session, user_id, {**values, "updated_at": now})
        assert row is not None  # locked above
        await record(
            session,
            actor,
            Entry(
                "user.update", "user", user_id, details={"fields": sorted(body.model_fields_set)}
            ),
        )
        return row, revoked


async def delete(
    session: AsyncSession, actor: Actor, settings: AMSettings, user_id: str
) -> dict[str, Any]:
    """The revocation entry to announce after the commit."""
    async with session.begin():
        admins = await repo.lock_active_admins(session)
        row = await _existing(session, user_id, for_update=True)
        if _demotes(row, {"status": "disabled"}):
            _keep_an_admin(admins, user_id, "deleted")
        await repo.delete(session, user_id)  # refresh tokens go with it (cascade)
        revoked = await revocations.revoke(session, settings, row.username)
        await record(
            session,
            actor,
            Entry("user.delete", "user", user_id, details={"username": row.username}),
        )
        return revoked


async def unlock(
    session: AsyncSession, actor: Actor, user_id: str, throttle: LoginThrottle
) -> None:
    async with session.begin():
        row = await _existing(session, user_id, for_update=True)
        await throttle.unlock(row.username)
        await repo.update(
            session,
            user_id,
            {"failed_logins": 0, "locked_until": None, "updated_at": datetime.now(UTC)},
        )
        await record(session, actor, Entry("user.unlock", "user", user_id))


async def _set_password(
    session: AsyncSession,
    actor: Actor,
    settings: AMSettings,
    user: UserRow,
    new_hash: str,
    action: str,
) -> dict[str, Any]:
    """Replace the hash and end every token got with the old password (refresh tokens
    here, access tokens through a revocation entry, returned for announcing)."""
    now = datetime.now(UTC)
    user_id = user.id
    if not await repo.set_password_if(session, user_id, user.password_hash, new_hash, now):
        raise Conflict("the password was changed meanwhile; sign in again")
    await refresh_repo.revoke_user(session, user_id, now)
    revoked = await revocations.revoke(session, settings, user.username)
    await record(session, actor, Entry(action, "user", user_id, details={"tokens_revoked": True}))
    return revoked


async def reset_password(
    session: AsyncSession, actor: Actor, settings: AMSettings, user_id: str, new_password: str
) -> dict[str, Any]:
    """The revocation entry to announce after the commit."""
    new_hash = await hash_secret(new_password)
    async with session.begin():
        row = await _existing(session, user_id, for_update=True)
        return await _set_password(session, actor, settings, row, new_hash, "user.reset_password")


async def change_password(
    session: AsyncSession,
    actor: Actor,
    settings: AMSettings,
    username: str,
    current: str,
    new_password: str,
    throttle: LoginThrottle,
    address: str,
) -> dict[str, Any]:
    """A wrong ``current`` counts as a failed sign-in from ``address`` and is audited.
    Returns the revocation entry to announce: the caller's own tokens end too (whoever
    may have copied one is signed out with it), so the user signs in again."""
    attempt = await throttle.begin_password(username, address)
    if attempt.locked:
        raise RateLimited("too many failed sign-ins from this address", attempt.locked_for)
    async with session.begin():
        row = await repo.by_username(session, username)
    if row is None:
        raise NotFound("user not found")
    user_id = row.id
    try:
        ok = await verify_password(row.password_hash, current)
    except RateLimited:
        await throttle.abandon(attempt)
        raise
    if not ok:
        async with session.begin():
            await repo.count_failure(session, user_id)
            await record(
                session,
                actor,
                Entry(
                    "user.change_password",
                    "user",
                    user_id,
                    outcome="failure",
                    details={"reason": "current password is wrong", "address": address},
                ),
            )
        await throttle.failed(attempt)
        raise ValidationFailed("current password is wrong", details={"field": "current_password"})
    new_hash = await hash_secret(new_password)
    async with session.begin():
        revoked = await _set_password(
            session, actor, settings, row, new_hash, "user.change_password"
        )
    await throttle.succeeded(attempt)
    return revoked


# One answer for every refusal (issue 13): which of these it was is for the audit
# log, not for whoever is guessing.
REFUSED = "invalid username or password"


async def login(
    session: AsyncSession, throttle: LoginThrottle, username: str, password: str, address: str
) -> UserRow:
    """The user row on success; budgets, counts and audits every attempt.

    No row lock is held while Argon2 runs: the row is read, the password checked
    outside any transaction, then the outcome written in a short one. An unknown user
    costs the same Argon2 work as a known one; a locked (username, address) pair costs
    none, for unknown names exactly as for known ones."""
    attempt = await throttle.begin_password(username, address)  # RateLimited: 429
    async with session.begin():
        row = await repo.by_username(session, username)
    ok = False
    if not attempt.locked:
        try:
            ok = await verify_password(row.password_hash if row else None, password)
        except RateLimited:
            await throttle.abandon(attempt)
            raise
    failure: str | None = None
    if row is None:
        failure = "unknown username"
    elif attempt.locked:
        failure = "too many failures from this address (locked)"
    elif not ok:
        failure = "wrong password"
    elif row.status != "active":
        failure = "account disabled"
    now = datetime.now(UTC)
    async with session.begin():
        if failure is None and row is not None:
            row = await repo.update(
                session,
                row.id,
                {"failed_logins": 0, "locked_until": None, "last_login_at": now},
            )
            if row is None:
                failure = "unknown username"  # deleted while its password was checked
        elif row is not None and not attempt.locked:
            await repo.count_failure(session, row.id)
        details: dict[str, Any] = {"grant": "password", "address": address}
        if failure:
            details["reason"] = failure
        await record(
            session,
            Actor(username, "anonymous" if failure else "user"),
            Entry(
                "login.failure" if failure else "login.success",
                "user",
                row.id if row is not None else None,
                outcome="failure" if failure else "success",
                details=details,
            ),
        )
    if failure is not None:
        await throttle.failed(attempt)
        raise OAuthError("invalid_grant", REFUSED)
    await throttle.succeeded(attempt)
    assert row is not None  # no failure: the row was read and updated
    return row
