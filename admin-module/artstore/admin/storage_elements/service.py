"""Registry use cases: discover, register, update, delete, mode, refresh, and polling."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit.service import Actor, Entry, record, record_alone
from artstore.admin.events import SE_CHANNEL, Events
from artstore.admin.settings import AMSettings
from artstore.admin.storage_elements import client, url_policy
from artstore.admin.storage_elements import repository as repo
from artstore.admin.storage_elements.client import Observation
from artstore.admin.storage_elements.schemas import ModeRequest, Register, SEPatch
from artstore.common.dberrors import safe_reason
from artstore.common.errors import Conflict, NotFound, ValidationFailed

log = logging.getLogger("artstore.admin.storage_elements")


def _missing(storage_id: str) -> NotFound:
    return NotFound(f"storage element {storage_id} not found", details={"storage_id": storage_id})


def normalize(url: str) -> str:
    return url.rstrip("/")


def _count(value: Any) -> int:
    """A capacity figure as an SE reported it; anything but a count reads as 0 (an SE's
    odd answer must not stop the poll round of every SE)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _check_identity(settings: AMSettings, url: str, seen: str, expected: str | None) -> None:
    """The SE at ``url`` must be the one being registered, and its id must not be the
    common audience (a token bound to it would then be good everywhere)."""
    if expected is not None and seen != expected:
        raise Conflict(
            "that url serves another storage element",
            details={"url": url, "storage_id": seen, "expected": expected},
        )
    if seen == settings.jwt_audience:
        raise Conflict(
            "a storage element's id may not be the token audience",
            details={"url": url, "storage_id": seen},
        )


def observed_values(seen: Observation, now: datetime) -> dict[str, Any]:
    """Registry columns from one observation; an unreachable SE keeps its last figures."""
    values: dict[str, Any] = {"status": seen.status}
    if seen.info is not None:
        cap = seen.info.get("capacity")
        cap = cap if isinstance(cap, dict) else {}
        values.update(
            mode=str(seen.info.get("mode", "")),
            backend=str(seen.info.get("backend", "")),
            total_bytes=_count(cap.get("total_bytes")),
            used_bytes=_count(cap.get("used_bytes")),
            available_bytes=_count(cap.get("available_bytes")),
            file_count=_count(cap.get("file_count")),
            last_seen_at=now,
        )
    return values


async def discover(settings: AMSettings, http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    return await client.info(http, await url_policy.check(url, settings.se_url_allow))


async def register(
    session: AsyncSession,
    settings: AMSettings,
    http: httpx.AsyncClient,
    actor: Actor,
    body: Register,
) -> Any:
    url = await url_policy.check(body.url, settings.se_url_allow)
    seen = await client.observe(http, url)
    if seen.info is None:
        await client.info(http, url)  # raises UPSTREAM_UNAVAILABLE with the reason
    assert seen.info is not None
    storage_id = str(seen.info["storage_id"])
    _check_identity(settings, url, storage_id, body.storage_id)
    now = datetime.now(UTC)
    row = {
        "storage_id": storage_id,
        "name": body.name or str(seen.info.get("name") or storage_id),
        "url": url,
        "created_at": now,
        "updated_at": now,
        **observed_values(seen, now),
    }
    async with session.begin():
        if not await repo.insert(session, row):
            known = await repo.find_conflict(session, url, storage_id)
            raise Conflict(
                "storage element already registered",
                details={"url": url, "storage_id": storage_id,
                         "registered_as": known["storage_id"] if known else None},
            )  # fmt: skip
        await record(
            session,
            actor,
            Entry("storage_element.register", "storage_element", storage_id, details={"url": url}),
        )
        return await repo.get(session, storage_id)


async def page(
    session: AsyncSession, mode: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[Any], int]:
    async with session.begin():
        return await repo.page(session, mode, status, limit, offset)


async def get(session: AsyncSession, storage_id: str) -> Any:
    async with session.begin():
        row = await repo.get(session, storage_id)
    if row is None:
        raise _missing(storage_id)
    return row


async def patch(
    session: AsyncSession,
    settings: AMSettings,
    http: httpx.AsyncClient,
    actor: Actor,
    storage_id: str,
    body: SEPatch,
) -> Any:
    values: dict[str, Any] = body.model_dump(exclude_unset=True, exclude_none=True)
    if not values:
        raise ValidationFailed("nothing to change")
    now = datetime.now(UTC)
    if "url" in values:
        values["url"] = await url_policy.check(values["url"], settings.se_url_allow)
        seen = await client.observe(http, values["url"])
        if seen.info is None:
            await client.info(http, values["url"])
        assert seen.info is not None
        _check_identity(settings, values["url"], str(seen.info["storage_id"]), storage_id)
        values.update(observed_values(seen, now))
    async with session.begin():
        if await repo.get(session, storage_id, for_update=True) is None:
            raise _missing(storage_id)
        if "url" in values and await repo.find_conflict(
            session, values["url"], storage_id, exclude=storage_id
        ):
            raise Conflict("url already registered", details={"url": values["url"]})
        row = await repo.update(session, storage_id, {**values, "updated_at": now})
        await record(
            session,
            actor,
            Entry(
                "storage_element.update",
                "storage_element",
                storage_id,
                details={"fields": sorted(body.model_fields_set)},
            ),
        )
        return row


async def delete(session: AsyncSession, actor: Actor, storage_id: str) -> None:
    async with session.begin():
        row = await repo.get(session, storage_id, for_update=True)
        if row is None:
            raise _missing(storage_id)
        await repo.delete(session, storage_id)
        await record(
            session,
            actor,
            Entry("storage_element.delete", "storage_element", storage_id,
                  details={"url": row["url"]}),
        )  # fmt: skip


async def change_mode(
    session: AsyncSession,
    http: httpx.AsyncClient,
    actor: Actor,
    token: str,
    storage_id: str,
    body: ModeRequest,
) -> tuple[int, Any]:
    """Forward the transition; (the SE's status, the SE's body)."""
    row = await get(session, storage_id)
    status, answer = await client.transition_mode(http, row["url"], body.model_dump(), token)
    ok = status == 200
    entry = Entry(
        "storage_element.mode",
        "storage_element",
        storage_id,
        outcome="success" if ok else "failure",
        details={"target_mode": body.target_mode, "status": status},
    )
    if ok:
        async with session.begin():
            await repo.update(
                session,
                storage_id,
                {"mode": answer.get("current_mode", body.target_mode),
                 "updated_at": datetime.now(UTC)},
            )  # fmt: skip
            await record(session, actor, entry)
    else:
        await record_alone(session, actor, entry)
    return status, answer


async def _apply(
    session: AsyncSession, events: Events, row: Any, seen: Observation, now: datetime
) -> Any:
    values = observed_values(seen, now)
    async with session.begin():
        # Guarded: a mode change recorded while this observation was in flight is newer
        # than what the observation saw; the next poll sees the SE as it is now.
        updated = await repo.update(
            session, row["storage_id"], {**values, "updated_at": now}, row["updated_at"]
        )
        if updated is None:
            return await repo.get(session, row["storage_id"])
    if updated is not None and (updated["status"], updated["mode"]) != (row["status"], row["mode"]):
        await events.publish(
            SE_CHANNEL,
            {
                "storage_id": row["storage_id"],
                "status": updated["status"],
                "previous_status": row["status"],
                "mode": updated["mode"],
                "at": now.isoformat(),
            },
        )
    return updated


async def refresh(
    session: AsyncSession, http: httpx.AsyncClient, events: Events, storage_id: str
) -> Any:
    row = await get(session, storage_id)
    seen = await client.observe(http, row["url"])
    updated = await _apply(session, events, row, seen, datetime.now(UTC))
    if updated is None:
        raise _missing(storage_id)
    return updated


async def poll_all(session: AsyncSession, http: httpx.AsyncClient, events: Events) -> int:
    """Observe every registered SE at once and record what was seen; the count polled."""
    async with session.begin():
        rows = await repo.all_rows(session)
    seen = await asyncio.gather(*(client.observe(http, r["url"]) for r in rows))
    now = datetime.now(UTC)
    for row, observation in zip(rows, seen, strict=True):
        try:
            await _apply(session, events, row, observation, now)
        except Exception as exc:  # one SE's odd answer must not stop the round for others
            log.warning("poll of %s not recorded: %s", row["storage_id"], safe_reason(exc))
    return len(rows)
