"""GC (DESIGN §5.5): temporary files past ``expires_at`` become expired; expired files
and tombstones older than ``SE_RECLAIM_AGE`` are removed (attr first, then blob), each
step journaled."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from artstore.storage_element.attr.model import Attr
from artstore.storage_element.files.mutate import expire_file
from artstore.storage_element.node import StorageNode

log = logging.getLogger("artstore.storage_element.gc")


def _all_attrs(node: StorageNode) -> list[Attr]:
    found = []
    for path in node.index.all_paths():
        attr = node.read_attr_sync(path)
        if attr is not None:
            found.append(attr)
    return found


async def collect(node: StorageNode, now: datetime | None = None) -> dict[str, Any]:
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
                freed += await reclaim(node, attr)
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


async def reclaim(node: StorageNode, attr: Attr) -> int:
    """Remove one copy for good: attr (the commit point), then blob, then its row."""
    path, fid = attr.storage_path, attr.file_id
    async with node.file_locked(fid):
        blob = await asyncio.to_thread(node.backend.blob_size, path) or 0
        raw = len(attr.encode())
        txn = await node.journal.begin("reclaim", {"file_id": fid, "storage_path": path})
        node.faults.point("reclaim.after_begin")
        await asyncio.to_thread(node.backend.remove_attr, path)
        node.faults.point("reclaim.after_attr_remove")
        await asyncio.to_thread(node.backend.remove_blob, path)
        node.faults.point("reclaim.after_blob_remove")
        await node.journal.commit(txn, owes_catalog=node.catalog.enabled)
        node.faults.point("reclaim.after_commit")
        node.index.discard(path)
        node.capacity.stored(-(blob + raw), files=-1)
    await node.catalog.record(txn, fid, None)
    return blob + raw
