"""The session sweep (run by every create) against a create in progress (issue 12).

Found by the power-loss snapshot suite: a create that had made its directory but not yet
written ``session.json`` (its commit point) looked "never committed" to another create's
sweep, which removed it: the first create answered 500, or 201 with its data file gone
and a 500 on the first append. The sweep now judges each candidate again under the
session's lock, which a create holds from its mkdir to its commit point.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from artstore.common.auth import Principal
from artstore.storage_element import lifecycle
from artstore.storage_element.state import SEState
from artstore.storage_element.uploads import service
from artstore.storage_element.uploads.schemas import SessionCreate
from artstore.storage_element.uploads.store import SessionStore
from tests.support.se import in_process_node

ALICE = Principal(sub="alice", kind="user", name="alice", scopes=frozenset())


def _node(tmp_path: Path) -> SEState:
    node: SEState = in_process_node(tmp_path / "data")
    return node


async def _with_node(tmp_path: Path, check: Callable[[SEState], Awaitable[None]]) -> None:
    node = _node(tmp_path)
    tasks = await lifecycle.start(node)
    try:
        await check(node)
    finally:
        await lifecycle.stop(node, tasks)


def test_a_create_in_progress_is_not_swept_by_another_create(tmp_path: Path) -> None:
    async def check(node: SEState) -> None:
        store = SessionStore(node.settings.data_dir)
        sid = str(uuid.uuid4())
        async with node.store.locks.hold(f"session:{sid}"):
            # A create between its mkdir and its commit point (it holds the lock).
            store.root.mkdir(parents=True, exist_ok=True)
            store.dir(sid).mkdir()
            (store.dir(sid) / "data").write_bytes(b"")
            other = asyncio.create_task(service.create(node, ALICE, SessionCreate(length=5)))
            await asyncio.wait({other}, timeout=0.5)  # long enough for an unlocked sweep
            assert (store.dir(sid) / "data").exists()
            now = datetime.now(UTC)
            store.save(
                {
                    "session_id": sid,
                    "offset": 0,
                    "expires_at": (now + timedelta(days=1)).isoformat(),
                }
            )
        await other
        assert store.load(sid) is not None and (store.dir(sid) / "data").exists()

    asyncio.run(_with_node(tmp_path, check))


def test_never_committed_and_expired_sessions_are_still_swept(tmp_path: Path) -> None:
    async def check(node: SEState) -> None:
        store = SessionStore(node.settings.data_dir)
        store.root.mkdir(parents=True, exist_ok=True)
        crashed, expired = str(uuid.uuid4()), str(uuid.uuid4())
        store.dir(crashed).mkdir()  # a crash mid-create: no session.json
        store.dir(expired).mkdir()
        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        (store.dir(expired) / "session.json").write_text(
            json.dumps({"session_id": expired, "expires_at": past})
        )
        made = await service.create(node, ALICE, SessionCreate(length=5))
        assert sorted(p.name for p in store.root.iterdir()) == [made["session_id"]]

    asyncio.run(_with_node(tmp_path, check))
