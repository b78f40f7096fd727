"""Moving a damaged copy aside: never deleted, its catalog row marked."""

from __future__ import annotations

import asyncio
import logging

from artstore.storage_element.catalog.sync import CATALOG_ERRORS
from artstore.storage_element.node import StorageNode

log = logging.getLogger("artstore.storage_element.quarantine")


async def quarantine(
    node: StorageNode, storage_path: str, file_id: str | None, reason: str
) -> str | None:
    """Move ``storage_path``'s attr and blob into ``quarantine/`` and mark its catalog row.

    Returns the file id: the one given, else the one the catalog knows for that path.
    """
    size, had_attr = await asyncio.to_thread(_stored, node, storage_path)
    dest = await asyncio.to_thread(node.backend.quarantine, storage_path)
    node.index.discard(storage_path)
    node.capacity.stored(-size, files=-1 if had_attr else 0)
    node.maintenance.quarantined += 1
    log.error(
        "copy quarantined",
        extra={
            "fields": {
                "storage_path": storage_path,
                "file_id": file_id,
                "reason": reason,
                "moved_to": dest,
            }
        },
    )
    repo = node.catalog.repo
    if repo is not None:
        try:
            known = await asyncio.wait_for(
                repo.mark_quarantined(storage_path, reason), node.settings.catalog_timeout
            )
            file_id = file_id or known
        except CATALOG_ERRORS as exc:  # the row stays as it was; reconcile reports the copy
            log.warning("could not mark %s quarantined in the catalog: %s", storage_path, exc)
    return file_id


def _stored(node: StorageNode, storage_path: str) -> tuple[int, bool]:
    """Bytes the copy takes under files/, and whether it has an attr."""
    blob = node.backend.blob_size(storage_path) or 0
    try:
        attr = len(node.backend.read_attr(storage_path))
    except FileNotFoundError:
        return blob, False
    return blob + attr, True
