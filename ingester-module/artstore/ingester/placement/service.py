"""Which storage elements take a file (DESIGN §7 placement).

Temporary files go to ``edit`` SEs, permanent ones to ``rw`` SEs, among those the
registry lists as online. The registry's capacity figures can be a poll or two old, so
every candidate's ``/info`` is read just before placing: an SE that is unreachable,
has changed mode or lacks room is passed over for the next one. That is what makes
"507 or unreachable -> try the next SE" safe: nothing of the body has been read yet.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from artstore.common.errors import ArtStoreError, StorageFull
from artstore.common.registry import KIND_MODE, StorageElementRef
from artstore.ingester import upstream
from artstore.ingester.state import Ingester

log = logging.getLogger("artstore.ingester.placement")


class NoStorageAvailable(ArtStoreError):
    status, code = 503, "NO_STORAGE_AVAILABLE"


def ordered(ses: list[StorageElementRef], strategy: str) -> list[StorageElementRef]:
    """most_free: the emptiest first (spreads load). fill_first: a stable order (by
    storage id), so one SE fills up before the next is used."""
    if strategy == "fill_first":
        return sorted(ses, key=lambda se: se.storage_id)
    return sorted(ses, key=lambda se: (-se.available_bytes, se.storage_id))


async def choose(
    ing: Ingester,
    retention: str,
    count: int,
    size_hint: int = 0,
    *,
    exclude: frozenset[str] = frozenset(),
    local_only: bool = False,
) -> list[StorageElementRef]:
    """``count`` distinct SEs that take ``retention`` files and have room for
    ``size_hint`` bytes right now. 503 NO_STORAGE_AVAILABLE when too few are online,
    507 STORAGE_FULL when enough are online but too few have room."""
    mode = KIND_MODE[retention]
    pool = [
        se
        for se in ing.registry.writable(retention)
        if se.storage_id not in exclude and (not local_only or se.backend == "local")
    ]
    # Fresh figures of every candidate at once (cheap: one small GET each); ordering
    # by them is what lets most_free spread files that arrive faster than the registry
    # is refreshed.
    seen = await asyncio.gather(*(upstream.info(ing.http, se) for se in pool))
    fresh: list[StorageElementRef] = []
    full: list[str] = []
    for se, now in zip(pool, seen, strict=True):
        if now is None or now.get("mode") != mode or now.get("status") == "maintenance":
            continue  # unreachable, or no longer taking this kind of file
        if "upload" not in now.get("allowed_operations", ["upload"]):
            continue
        available = int((now.get("capacity") or {}).get("available_bytes", 0))
        if available < max(size_hint, 1):
            full.append(se.storage_id)
            continue
        fresh.append(replace(se, available_bytes=available))
    chosen = ordered(fresh, ing.settings.placement)[:count]
    if len(chosen) == count:
        return chosen
    details = {
        "retention_policy": retention,
        "needed": count,
        "usable": [se.storage_id for se in chosen],
        "full": full,
    }
    if len(chosen) + len(full) >= count and full:
        raise StorageFull(f"no {mode} storage element has room for this file", details=details)
    raise NoStorageAvailable(f"not enough {mode} storage elements online", details=details)
