"""The issuer's side of per-subject revocation (lib/artstore/common/revocation.py).

A user disabled, deleted, given other roles or a new password, and a service account
suspended, deleted, narrowed or given a new secret, gets a row ``(sub, not_before,
expires_at)`` in the same transaction as the change; after the commit the entry is
applied to this admin's own verifier and published on Redis; every service also polls
``GET /api/v1/auth/revocations`` (public: subjects appear as SHA-256 hex only).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from artstore.admin.events import Events
from artstore.admin.settings import AMSettings
from artstore.admin.state import AdminState, State
from artstore.admin.tables import revocations
from artstore.common.revocation import CHANNEL, PATH, RevocationFeed, subject_key

router = APIRouter(tags=["auth"])

# Tokens exchanged for one SE live at most 5 minutes and never longer than the token
# they came from; an entry outliving the access-token lifetime by this margin outlives
# every token it can refuse.
MARGIN_SECONDS = 300


def _entry(sub: str, not_before: float, expires_at: float) -> dict[str, Any]:
    return {
        "subject": subject_key(sub),
        "not_before": round(not_before, 3),
        "expires_at": int(expires_at),
    }


async def revoke(session: AsyncSession, settings: AMSettings, sub: str) -> dict[str, Any]:
    """Record "tokens of ``sub`` issued before now are void"; in the caller's transaction.

    Tokens carry ``iat`` to the millisecond, so one issued a moment after this (a user
    re-enabled and signing in at once) is not caught by it."""
    not_before = math.ceil(time.time() * 1000) / 1000  # iat is floored to the ms
    expires_at = math.ceil(not_before) + settings.access_token_ttl + MARGIN_SECONDS
    at = datetime.fromtimestamp(not_before, UTC)
    until = datetime.fromtimestamp(expires_at, UTC)
    stmt = insert(revocations).values(sub=sub, not_before=at, expires_at=until)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[revocations.c.sub],
            set_={"not_before": stmt.excluded.not_before, "expires_at": stmt.excluded.expires_at},
        )
    )
    await session.execute(delete(revocations).where(revocations.c.expires_at <= datetime.now(UTC)))
    return _entry(sub, not_before, expires_at)


async def current(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(revocations).where(revocations.c.expires_at > datetime.now(UTC))
    )
    return [
        _entry(r["sub"], r["not_before"].timestamp(), r["expires_at"].timestamp())
        for r in rows.mappings()
    ]


async def announce(feed: RevocationFeed, events: Events, entry: dict[str, Any]) -> None:
    """After the commit: this admin refuses at once; the others hear it on Redis."""
    feed.list.add([entry])
    await events.publish(CHANNEL, entry)


async def announce_if(state: AdminState, entry: dict[str, Any] | None) -> None:
    """:func:`announce` for a route: nothing to do without an entry (or a feed: tests of
    parts that run no lifespan)."""
    if entry is not None and state.revocations is not None:
        await announce(state.revocations, state.events, entry)


def admin_feed(settings: AMSettings, sessions: async_sessionmaker[AsyncSession]) -> RevocationFeed:
    """The admin reads its own table (another admin replica's revocations arrive on
    Redis at once, from this table at the next poll)."""

    async def fetch() -> list[dict[str, Any]]:
        async with sessions() as session, session.begin():
            return await current(session)

    return RevocationFeed(fetch, settings.redis_url, settings.revocation_poll_seconds)


@router.get(PATH)
async def list_revocations(state: State) -> dict[str, Any]:
    """Subjects (SHA-256 hex of ``sub``) whose access tokens issued before
    ``not_before`` (epoch seconds) are refused, until ``expires_at``. Public: services
    without credentials poll it; no name is disclosed."""
    async with state.sessions() as session, session.begin():
        return {"revocations": await current(session)}
