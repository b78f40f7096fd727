"""Upload use case: the write protocol of DESIGN §5.3.

WAL begin -> stream into tmp/ while hashing -> fsync -> checks -> attr into tmp/ ->
fsync -> rename blob -> rename attr (commit point) -> fsync folders -> WAL commit ->
catalog upsert -> 201.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from artstore.common.auth import Principal
from artstore.common.errors import (
    AttrTooLarge,
    ChecksumMismatch,
    Conflict,
    FileTooLarge,
    ModeNotAllowed,
    StorageFull,
    ValidationFailed,
)
from artstore.storage_element.attr.model import ATTR_MAX_BYTES, Attr
from artstore.storage_element.backends.base import BlobWriter, SmallWrite
from artstore.storage_element.capacity import Reservation
from artstore.storage_element.files.fields import UploadFields
from artstore.storage_element.layout import clean_original_filename, hour_folder, storage_name
from artstore.storage_element.modes.service import RETENTION_OF_MODE
from artstore.storage_element.node import StorageNode

DEFAULT_TTL_DAYS = 30
_PLACEHOLDER_CHECKSUM = "sha256:" + "0" * 64


@dataclass
class UploadRequest:
    principal: Principal
    fields: UploadFields
    content_type: str
    announced_size: int | None
    expected_sha256: str | None


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
) -> Attr:
    retention, ttl, expires = _retention(mode, req.fields, now)
    return Attr(
        file_id=file_id,
        storage_path=storage_path,
        original_filename=filename,
        content_type=req.content_type,
        size=size,
        checksum=checksum,
        uploaded_by=req.principal.sub,
        uploaded_at=now,
        updated_at=now,
        version=1,
        status="active",
        retention_policy=retention,
        ttl_days=ttl,
        expires_at=expires,
        description=req.fields.description,
        tags=req.fields.tags,
        metadata=req.fields.metadata,
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


def check_attr_size(encoded: bytes) -> None:
    if len(encoded) > ATTR_MAX_BYTES:
        raise AttrTooLarge(
            f"metadata would take {len(encoded)} bytes; the limit is {ATTR_MAX_BYTES}",
            details={"attr_bytes": len(encoded), "limit": ATTR_MAX_BYTES},
        )


async def store_upload(node: StorageNode, req: UploadRequest, body: AsyncIterator[bytes]) -> Attr:
    s = node.settings
    node.modes.require("upload")
    mode = node.modes.current
    now = datetime.now(UTC)
    file_id = req.fields.file_id or str(uuid.uuid4())
    inflight = node.uploads_in_flight
    if file_id in inflight or (req.fields.file_id and await node.find_attr(file_id)):
        raise Conflict(f"file {file_id} already exists", details={"file_id": file_id})
    filename = clean_original_filename(req.fields.filename or "file")
    storage_path = (
        f"{hour_folder(now)}/{storage_name(filename, req.principal.sub, now, uuid.UUID(file_id))}"
    )

    def build(size: int, checksum: str) -> Attr:
        return _build_attr(
            req,
            file_id=file_id,
            storage_path=storage_path,
            filename=filename,
            now=now,
            size=size,
            checksum=checksum,
            mode=mode,
        )

    # Before any byte is stored: the attr must fit even at the largest size.
    if _may_not_fit(req.fields, filename, req.content_type, req.principal.sub):
        check_attr_size(build(s.max_file_size, _PLACEHOLDER_CHECKSUM).encode())
    if req.announced_size is not None and req.announced_size > s.max_file_size:
        raise FileTooLarge(
            f"file exceeds {s.max_file_size} bytes", details={"max_file_size": s.max_file_size}
        )
    reservation = Reservation()
    if req.announced_size and not node.capacity.reserve(reservation, req.announced_size):
        raise StorageFull(
            "not enough room for this file",
            details={"available_bytes": node.capacity.available_bytes()},
        )

    inflight.add(file_id)
    txn = await node.journal.begin(
        "upload", {"file_id": file_id, "storage_path": storage_path}, wait=False
    )
    incoming = _Incoming()
    try:
        node.faults.point("upload.after_begin")
        await _receive(node, incoming, body, reservation, txn, storage_path)
        if incoming.writer is not None:
            node.faults.point("upload.after_tmp_blob")
        if req.expected_sha256 and req.expected_sha256 != incoming.sha256:
            raise ChecksumMismatch(
                "content does not match the announced SHA-256",
                details={"expected": req.expected_sha256, "actual": incoming.sha256},
            )
        size = incoming.size
        attr, encoded = build(size, f"sha256:{incoming.sha256}").seal()
        check_attr_size(encoded)  # fields sent after the file part are known only now
        await _publish(node, incoming, txn, storage_path, encoded)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(_undo, node, incoming.writer, storage_path))
        node.capacity.release(reservation)
        inflight.discard(file_id)
        await node.journal.abort(txn)
        raise
    await node.journal.commit(txn, owes_catalog=node.catalog.enabled)
    node.faults.point("upload.after_commit")
    node.capacity.release(reservation)
    node.capacity.stored(size + len(encoded), files=1)
    node.index.add(storage_path)
    inflight.discard(file_id)
    await node.catalog.record(txn, file_id, attr)
    node.faults.point("upload.after_catalog")
    return attr


@dataclass
class _Incoming:
    """The received body: streamed into a backend writer, or whole in memory when it
    stayed within ``SE_GROUP_COMMIT_MAX_BYTES`` (then it is published with a group)."""

    writer: BlobWriter | None = None
    data: bytes | None = None
    size: int = 0
    sha256: str = ""


# Hashing this much on the event loop costs less than a hop to a worker thread.
_HASH_INLINE_BYTES = 64 * 1024


async def _receive(
    node: StorageNode,
    incoming: _Incoming,
    body: AsyncIterator[bytes],
    reservation: Reservation,
    txn: str,
    storage_path: str,
) -> None:
    s = node.settings
    small_limit = s.group_commit_max_bytes if node.group is not None else 0
    buf = bytearray()
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > s.max_file_size:
                raise FileTooLarge(
                    f"file exceeds {s.max_file_size} bytes",
                    details={"max_file_size": s.max_file_size},
                )
            if received > reservation.amount:
                # Reserve a chunk ahead when there is room, else just what arrived.
                need = received - reservation.amount
                if not (
                    node.capacity.reserve(reservation, max(need, s.io_chunk_bytes))
                    or node.capacity.reserve(reservation, need)
                ):
                    raise StorageFull(
                        "storage ran out of room during the upload",
                        details={"received_bytes": received},
                    )
            buf += chunk
            if incoming.writer is None:
                if received <= small_limit:
                    continue  # may still be a small upload: keep it in memory
                incoming.writer = await asyncio.to_thread(
                    node.backend.new_writer, txn, storage_path
                )
            if len(buf) >= s.io_chunk_bytes:
                data, buf = bytes(buf), bytearray()
                await asyncio.to_thread(incoming.writer.write, data)
        incoming.size = received
        if incoming.writer is None and small_limit:
            data = bytes(buf)
            incoming.data = data
            incoming.sha256 = (
                hashlib.sha256(data).hexdigest()
                if len(data) <= _HASH_INLINE_BYTES
                else await asyncio.to_thread(_sha256_hex, data)
            )
            return
        if incoming.writer is None:
            incoming.writer = await asyncio.to_thread(node.backend.new_writer, txn, storage_path)
        if buf:
            await asyncio.to_thread(incoming.writer.write, bytes(buf))
        incoming.sha256 = await asyncio.to_thread(incoming.writer.finish)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull("the disk is full", details={"received_bytes": received}) from exc
        raise


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _publish(
    node: StorageNode, incoming: _Incoming, txn: str, storage_path: str, encoded: bytes
) -> None:
    """Blob then attr (the commit point), durably, once the WAL ``begin`` is durable (the
    group waits for it while it stages); ENOSPC maps to 507 in the error handler."""
    if incoming.data is not None:
        assert node.group is not None
        await node.group.publish(SmallWrite(txn, storage_path, incoming.data, encoded))
    else:
        assert incoming.writer is not None
        await node.journal.durable(txn)
        await asyncio.to_thread(
            node.backend.publish, incoming.writer, encoded, storage_path, node.faults.point
        )


def _undo(node: StorageNode, writer: BlobWriter | None, storage_path: str) -> None:
    """Leave nothing of a failed upload: the unpublished blob, and a blob or attr that
    reached its final name before the failure (e.g. the folder fsync failed)."""
    if writer is not None:
        writer.discard()
    node.backend.remove_attr(storage_path)
    node.backend.remove_blob(storage_path)
