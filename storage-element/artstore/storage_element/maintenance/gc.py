"""GC (architecture §5.5): temporary files past ``expires_at`` become expired; expired files
and tombstones older than ``SE_RECLAIM_AGE`` are removed (attr first, then blob), each
step journaled by the FileStore.

Constant memory (issue 19): the backend is walked in chunks (``maintenance.walk``); one
thread hop per chunk reads its attrs and keeps the few GC has to act on. Most attrs are
active files without ``expires_at``: a plain ``json.loads`` tells those apart, and only
the others are decoded and verified (pydantic and the seal cost ten times more).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from artstore.storage_element.attr.model import Attr, BadAttr, decode
from artstore.storage_element.files.mutate import expire_file
from artstore.storage_element.maintenance.walk import Copy, attr_reader, copies
from artstore.storage_element.state import SEState

log = logging.getLogger("artstore.storage_element.gc")


def _may_act(raw: bytes, now: datetime, reclaim_before: datetime) -> bool:
    """False when the attr surely needs nothing from GC; True to decode and judge it
    (anything unexpected included: the full decode decides, and quarantines)."""
    try:
        data = json.loads(raw)
        status = data["status"]
        if status == "active":
            expires = data.get("expires_at")
            return expires is not None and datetime.fromisoformat(expires) <= now
        if status in ("expired", "deleted"):
            return bool(datetime.fromisoformat(data["updated_at"]) <= reclaim_before)
        return True
    except (ValueError, TypeError, KeyError, AttributeError):
        return True


def _next_candidates(
    node: SEState, walk: Iterator[list[Copy]], now: datetime, reclaim_before: datetime
) -> list[Attr] | None:
    """Blocking: the next chunk's attrs GC may act on (None: the walk is over)."""
    batch = next(walk, None)
    if batch is None:
        return None
    read = attr_reader(node.backend)
    found = []
    for copy in batch:
        if not copy.attr:
            continue
        try:
            raw = read(copy.path)
        except FileNotFoundError:
            continue  # removed since it was listed
        if not _may_act(raw, now, reclaim_before):
            continue
        try:
            found.append(decode(raw))
        except BadAttr:
            node.read_attr_sync(copy.path)  # quarantines it, as every read of a bad attr
    return found


async def collect(node: SEState, now: datetime | None = None) -> dict[str, Any]:
    with node.maintenance.exclusive("gc"):
        now = now or datetime.now(UTC)
        reclaim_before = now - timedelta(seconds=node.settings.reclaim_age)
        expired = reclaimed = freed = 0
        walk = copies(node.backend, chunk=node.settings.maintenance_chunk, sizes=False)
        while True:
            found = await asyncio.to_thread(_next_candidates, node, walk, now, reclaim_before)
            if found is None:
                break
            for attr in found:
                if (
                    attr.status == "active"
                    and attr.expires_at is not None
                    and attr.expires_at <= now
                ):
                    attr = await expire_file(node, attr.file_id, now)
                    expired += 1
                    # Just expired: it is reclaimed a full reclaim age later.
                    continue
                if attr.status in ("expired", "deleted") and attr.updated_at <= reclaim_before:
                    got = await reclaim(node, attr)
                    if got is not None:
                        freed += got
                        reclaimed += 1
        result = {
            "expired": expired,
            "reclaimed": reclaimed,
            "bytes_freed": freed,
            "ran_at": now.isoformat(),
        }
        node.maintenance.gc_last = result
        if expired or reclaimed:
            log.info("gc", extra={"fields": result})
        return result


async def reclaim(node: SEState, attr: Attr) -> int | None:
    """Remove one copy for good (the FileStore's reclaim). The attr read by the walk is
    judged again under the file's lock: None when it changed meanwhile (kept)."""
    judged = attr

    def still(current: Attr) -> bool:
        return current.status in ("expired", "deleted") and current.updated_at == judged.updated_at

    return await node.store.reclaim(attr.file_id, attr.storage_path, still)
