"""The copies policy (architecture §10): how many copies a file should have, and the
fields a copy of a stored file is written with.

The ingester writes :func:`wanted_copies` copies of each file; the job worker's repair
keeps every file at that count (docs/repair.md). Both count the ``rw`` SEs the registry
lists as online, so the two agree on what a file is owed."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from artstore.contracts.files import FileMetadata

PERMANENT: Final = "permanent"


def wanted_copies(retention_policy: str, rw_count: int, permanent_copies: int) -> int:
    """Copies a file of ``retention_policy`` should have when ``rw_count`` ``rw`` SEs are
    online: ``permanent_copies`` for a permanent file, but never more than there are rw
    SEs to hold them (and at least one: with none, an upload fails anyway); a temporary
    file has one copy."""
    if retention_policy != PERMANENT:
        return 1
    return max(1, min(permanent_copies, max(rw_count, 1)))


def history_params(
    uploaded_by: str,
    uploaded_at: datetime | str,
    finalized_by: str | None = None,
    finalized_at: datetime | str | None = None,
) -> list[tuple[str, str]]:
    """The upload fields that make an SE record the original uploader (and finalizer) on
    a copy a service writes with its own account; an SE honours them from a service
    account only (storage_element/files/access.py)."""

    def text(at: datetime | str) -> str:
        return at.isoformat() if isinstance(at, datetime) else at

    out = [("uploaded_by", uploaded_by), ("uploaded_at", text(uploaded_at))]
    if finalized_by is not None and finalized_at is not None:
        out += [("finalized_by", finalized_by), ("finalized_at", text(finalized_at))]
    return out


def copy_params(
    meta: FileMetadata, retention: str, finalized: tuple[str, str] | None = None
) -> list[tuple[str, str]]:
    """The upload fields of a copy of ``meta``: its id, content fields and history (the
    original uploader and upload time; ``finalized`` (by, at), else what ``meta``
    already has). Every copy of a file thus states the same thing."""
    # The times as the SE wrote them (its JSON): every copy states the same text.
    said = meta.model_dump(mode="json", include={"uploaded_at", "finalized_at"})
    by, at = finalized or (meta.finalized_by, said.get("finalized_at"))
    params = [
        ("file_id", meta.file_id),
        ("retention_policy", retention),
        ("filename", meta.original_filename),
        *history_params(meta.uploaded_by, said["uploaded_at"], by, at),
    ]
    if meta.description:
        params.append(("description", meta.description))
    params += [("tags", tag) for tag in meta.tags]
    if meta.metadata:
        params.append(("metadata", json.dumps(meta.metadata)))
    return params
