"""Update (PATCH), delete (tombstone) and expire: a new attr version, written by the
FileStore (never in place: the new attr goes to tmp/, is fsynced and renamed over)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from artstore.common.errors import ValidationFailed
from artstore.storage_element.attr.model import Attr
from artstore.storage_element.files.schemas import FilePatch
from artstore.storage_element.state import SEState
from artstore.storage_element.store.changes import DELETE, EXPIRE, UPDATE


async def update_file(node: SEState, file_id: str, patch: FilePatch) -> Attr:
    node.modes.require("update")
    changes: dict[str, Any] = patch.model_dump(exclude_none=True)
    if not changes:
        raise ValidationFailed("give at least one of description, tags, metadata")
    if "tags" in changes:
        changes["tags"] = [t.strip() for t in changes["tags"]]
        if any(not t for t in changes["tags"]):
            raise ValidationFailed("tags must be non-empty strings", details={"field": "tags"})
    return await node.store.replace(file_id, UPDATE, lambda _old: changes)


async def delete_file(node: SEState, file_id: str) -> Attr:
    node.modes.require("delete")
    # A tombstone names no previews: their sidecars go now (the blob waits for GC).
    return await node.store.replace(
        file_id, DELETE, lambda _old: {"status": "deleted", "previews": None}
    )


async def expire_file(node: SEState, file_id: str, at: datetime) -> Attr:
    """GC's first step for a temporary file past ``expires_at`` (any mode: it is upkeep).

    ``at`` is GC's clock: the reclaim age counts from it.
    """

    def expire(old: Attr) -> dict[str, Any] | None:
        if old.status != "active":
            return None  # someone got there first
        return {"status": "expired", "updated_at": at}

    return await node.store.replace(file_id, EXPIRE, expire)
