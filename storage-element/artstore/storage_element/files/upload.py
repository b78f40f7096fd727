"""Upload use case: the write protocol of architecture §5.3, run by the FileStore.

WAL begin -> stream into tmp/ while hashing -> fsync -> checks -> attr into tmp/ ->
fsync -> link blob -> link attr (commit point) -> fsync folders -> WAL commit ->
catalog upsert -> 201. This module checks the request and builds the attr.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from artstore.common.auth import Principal
from artstore.common.errors import (
    ChecksumMismatch,
    FileTooLarge,
    ModeNotAllowed,
    ValidationFailed,
)
from artstore.storage_element.attr.model import ATTR_MAX_BYTES, Attr, BitrotRef
from artstore.storage_element.files.fields import UploadFields
from artstore.storage_element.layout import clean_original_filename, hour_folder, storage_name
from artstore.storage_element.modes.service import RETENTION_OF_MODE
from artstore.storage_element.state import SEState

# Re-exported: older imports find the attr-size check here.
from artstore.storage_element.store.filestore import check_attr_size as check_attr_size

DEFAULT_TTL_DAYS = 30
_PLACEHOLDER_CHECKSUM = "sha256:" + "0" * 64
_PLACEHOLDER_BITROT = BitrotRef(alg="xxh3-128", hex="0" * 32)


@dataclass
class UploadRequest:
    principal: Principal
    fields: UploadFields
    content_type: str
    announced_size: int | None
    expected_sha256: str | None
    # uploaded_by/_at, finalized_by/_at stated by a service account writing a copy for
    # the original uploader (checked by files/access.py); None: the caller, now.
    history: dict[str, Any] | None = None


def _retention(
    mode: str, fields: UploadFields, now: datetime
) -> tuple[str, int | None, datetime | None]:
    kind = RETENTION_OF_MODE[mode]
    if fields.retention_policy and fields.retention_policy != kind:
        raise ModeNotAllowed(
            f"a {mode} storage element keeps only {kind} files",
            details={"mode": mode, "retention_policy": fields.retention_policy},
        )
    if kind == "permanent":
        if fields.ttl_days is not None:
            raise ValidationFailed(
                "ttl_days applies to temporary files only", details={"field": "ttl_days"}
            )
        return kind, None, None
    ttl = fields.ttl_days or DEFAULT_TTL_DAYS
    return kind, ttl, now + timedelta(days=ttl)


def _build_attr(
    req: UploadRequest,
    *,
    file_id: str,
    storage_path: str,
    filename: str,
    now: datetime,
    size: int,
    checksum: str,
    mode: str,
    bitrot: BitrotRef | None = None,
) -> Attr:
    retention, ttl, expires = _retention(mode, req.fields, now)
    history = req.history or {}
    return Attr(
        file_id=file_id,
        storage_path=storage_path,
        original_filename=filename,
        content_type=req.content_type,
        size=size,
        checksum=checksum,
        uploaded_by=history.get("uploaded_by", req.principal.sub),
        uploaded_at=history.get("uploaded_at", now),
        updated_at=now,
        version=1,
        status="active",
        retention_policy=retention,
        ttl_days=ttl,
        expires_at=expires,
        description=req.fields.description,
        tags=req.fields.tags,
        metadata=req.fields.metadata,
        finalized_by=history.get("finalized_by"),
        finalized_at=history.get("finalized_at"),
        bitrot=bitrot,
    )


# The attr's bytes besides its free-text fields, with every number at its widest and the
# storage path at its longest (818 measured; tests/unit/test_attr_fit.py), the rest being
# the free-text fields themselves.
_ATTR_FIXED_BYTES = 1024
# JSON writes a control character as six (\u00XX); everything else at most as itself.
_JSON_GROWTH = 6


def _may_not_fit(fields: UploadFields, filename: str, content_type: str, uploader: str) -> bool:
    """False when the attr surely fits whatever the size, so the trial encode is skipped."""
    free = [filename, filename, content_type, uploader, uploader, fields.description or ""]
    free += fields.tags or []
    for k, v in (fields.metadata or {}).items():
        free += (k, v)
    text = sum(len(t.encode()) + 4 for t in free)  # + quotes and separator
    return _ATTR_FIXED_BYTES + _JSON_GROWTH * text > ATTR_MAX_BYTES


async def store_upload(node: SEState, req: UploadRequest, body: AsyncIterator[bytes]) -> Attr:
    """Check the request, then let the FileStore create the file: it claims the id
    (409 when taken, atomically), reserves the announced bytes, receives the body and
    publishes it (the commit point, under the mode gate); any failure undoes it all."""
    s = node.settings
    node.modes.require("upload")
    mode = node.modes.current
    now = datetime.now(UTC)
    file_id = req.fields.file_id or str(uuid.uuid4())
    filename = clean_original_filename(req.fields.filename or "file")
    storage_path = (
        f"{hour_folder(now)}/{storage_name(filename, req.principal.sub, now, uuid.UUID(file_id))}"
    )

    def build(size: int, checksum: str, bitrot: BitrotRef | None) -> Attr:
        return _build_attr(
            req,
            file_id=file_id,
            storage_path=storage_path,
            filename=filename,
            now=now,
            size=size,
            checksum=checksum,
            mode=mode,
            bitrot=bitrot,
        )

    # Before any byte is stored: the attr must fit even at the largest size.
    if _may_not_fit(req.fields, filename, req.content_type, req.principal.sub):
        check_attr_size(build(s.max_file_size, _PLACEHOLDER_CHECKSUM, _PLACEHOLDER_BITROT).encode())
    if req.announced_size is not None and req.announced_size > s.max_file_size:
        raise FileTooLarge(
            f"file exceeds {s.max_file_size} bytes", details={"max_file_size": s.max_file_size}
        )
    async with node.store.create(
        file_id,
        storage_path,
        announced=req.announced_size,
        lookup=req.fields.file_id is not None,  # a fresh uuid4 cannot be stored already
    ) as creation:
        await creation.receive(body)
        if req.expected_sha256 and req.expected_sha256 != creation.sha256:
            raise ChecksumMismatch(
                "content does not match the announced SHA-256",
                details={"expected": req.expected_sha256, "actual": creation.sha256},
            )
        attr, encoded = build(creation.size, f"sha256:{creation.sha256}", creation.bitrot).seal()
        check_attr_size(encoded)  # fields sent after the file part are known only now
        await creation.publish(attr, encoded)
    return attr
