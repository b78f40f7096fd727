"""Which storage elements take a file (architecture §7 placement).

Temporary files go to ``edit`` SEs, permanent ones to ``rw`` SEs, among those the
registry lists as online. Room and mode come from :class:`Capacity` (each SE's ``/info``
read in the background, minus what was placed since), not from a request per upload.
An SE that refuses a file anyway (507, or its mode changed) is marked and the upload
goes to the next one (``fanout.TryElsewhere``).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from artstore.common.errors import ArtStoreError, StorageFull
from artstore.common.registry import KIND_MODE, StorageElementRef
from artstore.contracts.copies import wanted_copies
from artstore.ingester.state import IngesterState

log = logging.getLogger("artstore.ingester.placement")


class NoStorageAvailable(ArtStoreError):
    status, code = 503, "NO_STORAGE_AVAILABLE"


def ordered(ses: list[StorageElementRef], strategy: str) -> list[StorageElementRef]:
    """most_free: the emptiest first (spreads load). fill_first: a stable order (by
    storage id), so one SE fills up before the next is used."""
    if strategy == "fill_first":
        return sorted(ses, key=lambda se: se.storage_id)
    return sorted(ses, key=lambda se: (-se.available_bytes, se.storage_id))


def copies_wanted(ing: IngesterState, retention: str) -> int:
    """Copies of a ``retention`` file (architecture §10): ``IG_REPLICAS`` of a permanent
    file while that many ``rw`` SEs are online, else one per online rw SE; a file stored
    with fewer is under-replicated and the job worker adds the rest when more rw SEs
    appear (docs/repair.md)."""
    rw_online = len(ing.registry.writable("permanent"))
    return wanted_copies(retention, rw_online, ing.settings.replicas)


def choose(
    ing: IngesterState,
    retention: str,
    count: int,
    size_hint: int = 0,
    *,
    exclude: frozenset[str] = frozenset(),
    no_room: frozenset[str] = frozenset(),
    local_only: bool = False,
) -> list[StorageElementRef]:
    """``count`` distinct SEs that take ``retention`` files and have room for
    ``size_hint`` bytes as far as the ingester knows (``exclude``: SEs this upload
    already failed on; ``no_room``: those of them that answered 507). 503
    NO_STORAGE_AVAILABLE when too few are online, 507 STORAGE_FULL when enough are
    online but too few have room. The chosen SEs are charged ``size_hint`` bytes."""
    mode = KIND_MODE[retention]
    writable = [
        se for se in ing.registry.writable(retention) if not local_only or se.backend == "local"
    ]
    pool = [se for se in writable if se.storage_id not in exclude]
    fresh: list[StorageElementRef] = []
    full: list[str] = [se.storage_id for se in writable if se.storage_id in no_room]
    for se in pool:
        seen = ing.capacity.seen(se)
        if not seen.reachable or seen.mode != mode or not seen.takes_uploads:
            continue  # unreachable, or no longer taking this kind of file
        if seen.available < max(size_hint, 1):
            full.append(se.storage_id)
            continue
        fresh.append(replace(se, available_bytes=seen.available))
    chosen = ordered(fresh, ing.settings.placement)[:count]
    if len(chosen) == count:
        for se in chosen:
            ing.capacity.placed(se, size_hint)
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
