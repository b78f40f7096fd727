"""Moving a damaged copy aside: never deleted, its catalog row marked (the FileStore)."""

from __future__ import annotations

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
