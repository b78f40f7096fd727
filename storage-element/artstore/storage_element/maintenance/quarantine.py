"""Quarantine (architecture §5.5): moving a damaged copy aside, listing what was moved,
and purging it for good.

Quarantined bytes are never served and never counted as a copy; they wait for an
operator (``GET``/``DELETE /api/v1/maintenance/quarantine``). Listing walks the backend
lazily and keeps one page: a quarantine of 100k entries is counted, not loaded.
"""

from __future__ import annotations

import asyncio
import itertools

from artstore.common.errors import NotFound, ValidationFailed
from artstore.common.pagination import Page, PageParams
from artstore.contracts.quarantine import QuarantineItem
from artstore.storage_element.attr.model import ATTR_MAX_BYTES
from artstore.storage_element.backends.base import Backend
from artstore.storage_element.backends.quarantine_entries import (
    INFO_SUFFIX,
    BadItem,
    QuarantinedEntry,
    entry_of,
    file_id_in,
    item_of,
    read_info,
)
from artstore.storage_element.layout import ATTR_SUFFIX
from artstore.storage_element.state import SEState


async def quarantine(
    node: SEState, storage_path: str, file_id: str | None, reason: str
) -> str | None:
    """Move ``storage_path``'s attr and blob into ``quarantine/`` and mark its catalog row.

    The caller holds the file's lock (``node.file_locked``) when it knows the id; code
    that judged the copy from a snapshot calls ``node.store.quarantine`` with a recheck
    instead. Returns the file id: the one given, else the one the catalog knows.
    """
    moved = await node.store.quarantine_held(storage_path, file_id, reason)
    return moved.file_id


def describe(backend: Backend, found: QuarantinedEntry) -> QuarantineItem:
    """The item of one entry: its reason and file id from the info recorded with it,
    else (an entry moved before reasons were kept) the id its attr names."""
    info: dict[str, object] = {}
    if found.info_size is not None and found.info_size <= ATTR_MAX_BYTES:
        info = read_info(backend.read_quarantined(found.entry, INFO_SUFFIX))
    file_id = file_id_in(info)
    # An attr is read only at a size an attr can have (a damaged one may be anything).
    if file_id is None and found.attr_size is not None and found.attr_size <= ATTR_MAX_BYTES:
        file_id = file_id_in(read_info(backend.read_quarantined(found.entry, ATTR_SUFFIX)))
    reason = info.get("reason")
    return QuarantineItem(
        item=item_of(found.entry),
        file_id=file_id,
        path=found.storage_path,
        reason=reason if isinstance(reason, str) and reason else "unknown",
        quarantined_at=found.quarantined_at,
        size=found.size,
    )


def _page_sync(backend: Backend, page: PageParams) -> tuple[list[QuarantineItem], int]:
    entries = backend.quarantine_entries()
    skipped = sum(1 for _ in itertools.islice(entries, page.offset))
    wanted = list(itertools.islice(entries, page.limit))
    rest = sum(1 for _ in entries)  # counted as listed, never held
    return [describe(backend, e) for e in wanted], skipped + len(wanted) + rest


async def listing(node: SEState, page: PageParams) -> Page[QuarantineItem]:
    items, total = await asyncio.to_thread(_page_sync, node.backend, page)
    return Page.of(items, total, page)


def parse_item(item: str) -> str:
    """The entry of an item id; 400 for anything this SE could not have made."""
    try:
        return entry_of(item)
    except BadItem:
        raise ValidationFailed(
            "malformed quarantine item id", details={"item": item[:100]}
        ) from None


async def one(node: SEState, item: str) -> QuarantineItem:
    """One item (404 unknown): what the admin checks before it restores or purges."""
    entry = parse_item(item)

    def read() -> QuarantineItem | None:
        found = node.backend.quarantined_entry(entry)
        return None if found is None else describe(node.backend, found)

    got = await asyncio.to_thread(read)
    if got is None:
        raise NotFound("no such quarantined item", details={"item": item})
    return got


async def purge(node: SEState, item: str) -> dict[str, object]:
    """Purge one item (404 unknown). Allowed in every mode: quarantined bytes are no
    copy and serve nothing, so removing them changes no file the mode protects."""
    entry = parse_item(item)
    found, freed = await node.store.purge_quarantined(entry)
    return {"item": item, "path": found.storage_path, "bytes_freed": freed}
