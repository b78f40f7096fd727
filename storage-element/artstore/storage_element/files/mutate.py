"""Update (PATCH) and delete (tombstone): a new attr version, written like an upload's.

Never in place: the new attr goes to tmp/, is fsynced and renamed over the old one.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from artstore.common.errors import FileGone, ValidationFailed
from artstore.storage_element.attr.model import Attr
from artstore.storage_element.files.schemas import FilePatch
from artstore.storage_element.files.upload import check_attr_size
from artstore.storage_element.node import StorageNode


async def update_file(node: StorageNode, file_id: str, patch: FilePatch) -> Attr:
    node.modes.require("update")
    changes: dict[str, Any] = patch.model_dump(exclude_none=True)
    if not changes:
        raise ValidationFailed("give at least one of description, tags, metadata")
    if "tags" in changes:
        changes["tags"] = [t.strip() for t in changes["tags"]]
        if any(not t for t in changes["tags"]):
            raise ValidationFailed("tags must be non-empty strings", details={"field": "tags"})
    return await _new_version(node, file_id, "update", changes)


async def delete_file(node: StorageNode, file_id: str) -> Attr:
    node.modes.require("delete")
    return await _new_version(node, file_id, "delete", {"status": "deleted"})


async def expire_file(node: StorageNode, file_id: str, at: datetime) -> Attr:
    """GC's first step for a temporary file past ``expires_at`` (any mode: it is upkeep).

    ``at`` is GC's clock: the reclaim age counts from it.
    """
    return await _new_version(node, file_id, "expire", {"status": "expired", "updated_at": at})


async def _new_version(node: StorageNode, file_id: str, kind: str, changes: dict[str, Any]) -> Attr:
    async with node.file_locked(file_id):
        old = await node.get_attr(file_id)
        if kind == "expire" and old.status != "active":
            return old  # someone got there first
        if old.status == "deleted":
            raise FileGone(f"file {file_id} is deleted", details={"file_id": file_id})
        new = Attr.model_validate(
            {
                **old.model_dump(),
                "version": old.version + 1,
                "updated_at": datetime.now(UTC),
                **changes,
            }
        ).sealed()
        encoded = new.encode()
        check_attr_size(encoded)
        await _write(node, kind, new, encoded)
        node.capacity.stored(len(encoded) - len(old.encode()))
    return new


async def _write(node: StorageNode, kind: str, new: Attr, encoded: bytes) -> None:
    txn = await node.journal.begin(
        kind,
        {"file_id": new.file_id, "storage_path": new.storage_path, "version": new.version},
    )
    node.faults.point(f"{kind}.after_begin")
    try:
        await asyncio.to_thread(
            node.backend.replace_attr, new.storage_path, encoded, node.faults.point, kind
        )
    except BaseException:
        await node.journal.abort(txn)
        raise
    await node.journal.commit(txn, owes_catalog=node.catalog.enabled)
    node.faults.point(f"{kind}.after_commit")
    await node.catalog.record(txn, new.file_id, new)
