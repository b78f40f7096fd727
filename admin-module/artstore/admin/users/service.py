"""User use cases: CRUD, lockout, unlock, passwords, login."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit.service import Actor, Entry, record
from artstore.admin.auth import repository as refresh_repo
from artstore.admin.auth.errors import OAuthError
from artstore.admin.passwords import hash_secret, verify_secret
from artstore.admin.settings import AMSettings
from artstore.admin.users import repository as repo
from artstore.admin.users.schemas import UserCreate, UserPatch
from artstore.common.errors import NotFound, ValidationFailed


def _missing(user_id: str) -> NotFound:
    return NotFound(f"user {user_id} not found", details={"id": user_id})


async def create(session: AsyncSession, actor: Actor, body: UserCreate) -> Any:
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
        return await repo.get(session, row["id"])


async def get(session: AsyncSession, user_id: str) -> Any:
    async with session.begin():
        row = await repo.get(session, user_id)
    if row is None:
        raise _missing(user_id)
    return row


async def by_username(session: AsyncSession, username: str) -> Any:
    async with session.begin():
        return await repo.by_username(session, username)


async def page(session: AsyncSession, limit: int, offset: int) -> tuple[list[Any], int]:
    async with session.begin():
        return await repo.page(session, limit, offset)


async def patch(session: AsyncSession, actor: Actor, user_id: str, body: UserPatch) -> Any:
    values: dict[str, Any] = body.model_dump(exclude_unset=True)
    if not values:
        raise ValidationFailed("nothing to change")
    if "roles" in values and values["roles"] is None:
        raise ValidationFailed("roles cannot be null", details={"field": "roles"})
    now = datetime.now(UTC)
    async with session.begin():
        if await repo.get(session, user_id, for_update=True) is None:
            raise _missing(user_id)
        if values.get("status") == "active":
            values.update(failed_logins=0, locked_until=None)  # re-enabling also unlocks
        if values.get("status") == "disabled":
            await refresh_repo.revoke_user(session, user_id, now)
        row = await repo.update(session, user_id, {**values, "updated_at": now})
        await record(
            session,
            actor,
            Entry(
                "user.update", "user", user_id, details={"fields": sorted(body.model_fields_set)}
            ),
        )
        return row


async def delete(session: AsyncSession, actor: Actor, user_id: str) -> None:
    async with session.begin():
        row = await repo.get(session, user_id, for_update=True)
        if row is None:
            raise _missing(user_id)
        await repo.delete(session, user_id)  # refresh tokens go with it (cascade)
        await record(
            session,
            actor,
            Entry("user.delete", "user", user_id, details={"username": row["username"]}),
        )


async def unlock(session: AsyncSession, actor: Actor, user_id: str) -> None:
    async with session.begin():
        if await repo.get(session, user_id, for_update=True) is None:
            raise _missing(user_id)
        await repo.update(
            session,
            user_id,
            {"failed_logins": 0, "locked_until": None, "updated_at": datetime.now(UTC)},
        )
        await record(session, actor, Entry("user.unlock", "user", user_id))


async def _set_password(
    session: AsyncSession, actor: Actor, user_id: str, new_hash: str, action: str
) -> None:
    now = datetime.now(UTC)
    await repo.update(session, user_id, {"password_hash": new_hash, "updated_at": now})
    await refresh_repo.revoke_user(session, user_id, now)
    await record(session, actor, Entry(action, "user", user_id))


async def reset_password(
    session: AsyncSession, actor: Actor, user_id: str, new_password: str
) -> None:
    new_hash = await hash_secret(new_password)
    async with session.begin():
        if await repo.get(session, user_id, for_update=True) is None:
            raise _missing(user_id)
        await _set_password(session, actor, user_id, new_hash, "user.reset_password")


async def change_password(
    session: AsyncSession, actor: Actor, username: str, current: str, new_password: str
) -> None:
    async with session.begin():
        row = await repo.by_username(session, username, for_update=True)
        if row is None:
            raise NotFound("user not found")
        if not await verify_secret(row["password_hash"], current):
            raise ValidationFailed(
                "current password is wrong", details={"field": "current_password"}
            )
        new_hash = await hash_secret(new_password)
        await _set_password(session, actor, str(row["id"]), new_hash, "user.change_password")


async def login(session: AsyncSession, settings: AMSettings, username: str, password: str) -> Any:
    """The user row on success; counts failures, locks, audits every attempt."""
    now = datetime.now(UTC)
    failure: str | None = None
    async with session.begin():
        # Row lock: concurrent guesses are counted one after the other.
        row = await repo.by_username(session, username, for_update=True)
        ok = await verify_secret(row["password_hash"] if row else None, password)
        if row is None:
            failure = "invalid username or password"
        elif row["status"] == "disabled":
            failure = "account disabled"
        elif repo.now_locked(row, now):
            failure = "account locked"
        elif not ok:
            failure = "invalid username or password"
            failures = row["failed_logins"] + 1
            values: dict[str, Any] = {"failed_logins": failures}
            if failures >= settings.login_max_failures:
                values = {
                    "failed_logins": 0,
                    "locked_until": now + timedelta(seconds=settings.login_lockout_seconds),
                }
            await repo.update(session, str(row["id"]), values)
        else:
            row = await repo.update(
                session,
                str(row["id"]),
                {"failed_logins": 0, "locked_until": None, "last_login_at": now},
            )
        await record(
            session,
            Actor(username, "anonymous" if failure else "user"),
            Entry(
                "login.failure" if failure else "login.success",
                "user",
                str(row["id"]) if row is not None else None,
                outcome="failure" if failure else "success",
                details={"grant": "password", **({"reason": failure} if failure else {})},
            ),
        )
    if failure is not None:
        raise OAuthError("invalid_grant", failure)
    return row
