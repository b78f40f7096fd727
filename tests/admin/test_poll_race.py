"""The registry poller never undoes a change recorded while its observation was in
flight (a mode change through the admin answered "ro"; a poll that looked just before
must not write "rw" back)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.events import Events
from artstore.admin.storage_elements import repository as repo
from artstore.admin.storage_elements import service
from artstore.admin.storage_elements.client import Observation
from artstore.common.db import make_engine, make_sessionmaker
from tests.support.database import TestDatabase


@pytest.fixture
async def session(admin_db: TestDatabase) -> AsyncIterator[AsyncSession]:
    engine = make_engine(admin_db.url)
    async with make_sessionmaker(engine)() as s:
        yield s
    await engine.dispose()


def _info(mode: str) -> dict[str, object]:
    return {"mode": mode, "backend": "local", "status": "ok", "capacity": {"total_bytes": 10}}


async def test_a_stale_observation_does_not_undo_a_mode_change(session: AsyncSession) -> None:
    sid = f"se-race-{uuid.uuid4().hex[:6]}"
    t0 = datetime.now(UTC) - timedelta(seconds=10)
    async with session.begin():
        await repo.insert(
            session,
            {"storage_id": sid, "name": sid, "url": f"http://127.0.0.1:1/{sid}", "mode": "rw",
             "status": "online", "backend": "local", "total_bytes": 0, "used_bytes": 0,
             "available_bytes": 0, "file_count": 0, "created_at": t0, "updated_at": t0},
        )  # fmt: skip
        before = await repo.get(session, sid)  # what the poller read before it looked
    async with session.begin():  # the mode change lands meanwhile
        await repo.update(session, sid, {"mode": "ro", "updated_at": datetime.now(UTC)})
    events = Events("")
    stale = Observation(info=_info("rw"), ready="ok")
    kept = await service._apply(session, events, before, stale, datetime.now(UTC))
    assert kept["mode"] == "ro"
    async with session.begin():
        assert (await repo.get(session, sid))["mode"] == "ro"
        fresh = await repo.get(session, sid)
    # A poll that read the row after the change records what it saw.
    seen = Observation(info=_info("ro"), ready="ok")
    applied = await service._apply(session, events, fresh, seen, datetime.now(UTC))
    assert applied["mode"] == "ro" and applied["last_seen_at"] is not None
    async with session.begin():
        await repo.delete(session, sid)
