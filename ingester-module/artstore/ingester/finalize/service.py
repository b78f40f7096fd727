"""Finalize: a temporary file becomes permanent (architecture §7).

Steps: find the copies -> check the caller may finalize it (a ``user`` only their own
file: the temporary copy's ``uploaded_by``) -> stream the temporary copy to rw SE(s)
under the same id (each SE verifies the known checksum) -> delete the temporary copy.
Every step looks at what already exists first, so a retry after a failure at any step
finishes the job instead of repeating it: permanent copies already made are counted,
and a temporary copy already deleted means the work is done.

History: the permanent copies keep the temporary copy's ``uploaded_by``/``uploaded_at``
and add ``finalized_by``/``finalized_at``; they are written with the ingester's own
account, which alone may state them (architecture §10).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from artstore.common import ownership
from artstore.common.auth import Principal
from artstore.common.errors import Conflict, FileGone, NotFound
from artstore.common.registry import StorageElementRef
from artstore.contracts.files import FileMetadata
from artstore.ingester.placement.service import copies_wanted
from artstore.ingester.replication.copy import copy_to, locate
from artstore.ingester.state import IngesterState
from artstore.ingester.uploads.schemas import StoredFile

log = logging.getLogger("artstore.ingester.finalize")


async def finalize(ing: IngesterState, principal: Principal, file_id: str) -> StoredFile:
    auth = ing.acting_for(principal)
    found = await locate(ing, auth, file_id)
    temps = [(se, m) for se, m in found if m.retention_policy == "temporary"]
    perms = [
        (se, m) for se, m in found if m.retention_policy == "permanent" and m.status == "active"
    ]
    source = next(((se, m) for se, m in temps if m.status == "active"), None)
    if source is None:
        if perms:
            _require_owner(principal, perms[0][1], file_id)
            return StoredFile.from_copies([m for _, m in perms])  # finalized before (a retry)
        if any(m.status == "expired" for _, m in temps):
            raise FileGone(f"file {file_id} has expired", details={"file_id": file_id})
        raise NotFound(f"file {file_id} not found", details={"file_id": file_id})
    source_se, meta = source
    # Before anything is written: the temporary copy's uploader (who never changes).
    _require_owner(principal, meta, file_id)
    differ = [se.storage_id for se, m in perms if m.checksum != meta.checksum]
    if differ:
        raise Conflict(
            "a permanent copy with other content already has this id",
            details={"file_id": file_id, "storage_element_ids": differ},
        )
    need = copies_wanted(ing, "permanent") - len(perms)
    if need > 0:
        avoid = frozenset(se.storage_id for se, _ in perms)
        finalized = _finalized(principal, perms)
        perms += await copy_to(ing, source_se, meta, need, auth, avoid=avoid, finalized=finalized)
    await _delete_temporary(ing, source_se, file_id)
    return StoredFile.from_copies([m for _, m in perms])


def _require_owner(principal: Principal, meta: FileMetadata, file_id: str) -> None:
    """A ``user`` finalizes only their own files (architecture §10); the ingester checks it
    itself because the copies and the clean-up go with its own account."""
    ownership.require_owner(principal, meta.uploaded_by, file_id)


def _finalized(
    principal: Principal, perms: list[tuple[StorageElementRef, FileMetadata]]
) -> tuple[str, str]:
    """Who finalizes, and when: a retry keeps what its first attempt's copies say, so
    every permanent copy tells the same history."""
    for _, m in perms:
        if m.finalized_by and m.finalized_at:
            # As the SE wrote it (its JSON), so the new copies state the same text.
            return m.finalized_by, m.model_dump(mode="json")["finalized_at"]
    return principal.sub, datetime.now(UTC).isoformat()


async def _delete_temporary(ing: IngesterState, se: StorageElementRef, file_id: str) -> None:
    """With the ingester's own account: finalizing needs files:write, not files:delete."""
    # 410: deleted by an earlier attempt.
    await ing.se.delete_file(se, file_id, await ing.service_headers(se), accept=(204, 410))
