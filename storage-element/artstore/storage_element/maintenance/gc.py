"""GC (architecture §5.5): temporary files past ``expires_at`` become expired; expired files
and tombstones older than ``SE_RECLAIM_AGE`` are removed (attr first, then blob), each
step journaled by the FileStore."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from artstore.storage_element.attr.model import Attr
from artstore.storage_element.files.mutate import expire_file
from artstore.storage_element.state import SEState

log = logging.getLogger("artstore.storage_element.gc")


def _all_attrs(node: SEState) -> list[Attr]:
    found = []
    for path in node.index.all_paths():
        attr = node.read_attr_sync(path)
        if attr is not None:
            found.append(attr)
    return found


async def collect(node: SEState, now: datetime | None = None) -> dict[str, Any]:
    with node.maintenance.exclusive("gc"):
        now = now or datetime.now(UTC)
        reclaim_before = now - timedelta(seconds=node.settings.reclaim_age)
        expired = reclaimed = freed = 0
        for attr in await asyncio.to_thread(_all_attrs, node):
            if attr.status == "active" and attr.expires_at is not None and attr.expires_at <= now:
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
