"""Upload-session use cases. The session id is the id of the file it becomes, so a
completed session is recognised by its file (retrying completion is safe).

Durability: an append answers only after its bytes are fsynced and ``session.json``
(with the new offset) has been atomically replaced; creation, abort and completion are
journaled in the WAL (kind ``upload_session``). Recovery needs nothing special: a
session directory without ``session.json`` (a crash mid-create) or past its expiry is
swept, and completion goes through the normal upload protocol (its own WAL entry).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import ClientDisconnect

from artstore.common.auth import Principal
from artstore.common.errors import (
    ArtStoreError,
    ChecksumMismatch,
    Conflict,
    FileGone,
    FileTooLarge,
    Forbidden,
    NotFound,
    StorageFull,
    ValidationFailed,
)
from artstore.storage_element.attr.model import Attr
from artstore.storage_element.files.fields import UploadFields
from artstore.storage_element.files.upload import UploadRequest, _retention, store_upload
from artstore.storage_element.state import SEState
from artstore.storage_element.store.errors import Collision
from artstore.storage_element.uploads import handover
from artstore.storage_element.uploads.handover import HANDOVER, Superseded
from artstore.storage_element.uploads.schemas import SessionCreate
from artstore.storage_element.uploads.store import SessionStore, utcnow

KIND = "upload_session"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class SessionsNotSupported(ArtStoreError):
    status, code = 501, "NOT_SUPPORTED"


def _session_locked(node: SEState, sid: str) -> AbstractAsyncContextManager[None]:
    """A session's own lock: completing one creates the file, which takes the file's
    lock (held by the FileStore, not re-entrant) inside it."""
    return node.store.locks.hold(f"session:{sid}")


def store_of(node: SEState) -> SessionStore:
    return SessionStore(node.settings.data_dir)


def _field_pairs(body: SessionCreate) -> list[tuple[str, str]]:
    pairs = [("filename", body.filename)]
    if body.description is not None:
        pairs.append(("description", body.description))
    pairs += [("tags", tag) for tag in body.tags]
    if body.metadata:
        pairs.append(("metadata", json.dumps(body.metadata)))
    if body.retention_policy:
        pairs.append(("retention_policy", body.retention_policy))
    if body.ttl_days is not None:
        pairs.append(("ttl_days", str(body.ttl_days)))
    return pairs


def _fields(pairs: list[Any], file_id: str) -> UploadFields:
    fields = UploadFields()
    for name, value in pairs:
        fields.apply(str(name), str(value))
    fields.file_id = file_id
    return fields


async def create(node: SEState, principal: Principal, body: SessionCreate) -> dict[str, Any]:
    s = node.settings
    if s.backend != "local":
        raise SessionsNotSupported(
            "resumable upload sessions need the local backend", details={"backend": s.backend}
        )
    node.modes.require("upload")
    now = utcnow()
    sid = str(body.file_id or uuid.uuid4())
    pairs = _field_pairs(body)
    _retention(node.modes.current, _fields(pairs, sid), now)  # 409/400 now, not at the end
    checksum = body.checksum.lower() if body.checksum else None
    if checksum is not None and not _HEX64.match(checksum):
        raise ValidationFailed("checksum must be 64 hex digits", details={"field": "checksum"})
    if body.length > s.max_file_size:
        raise FileTooLarge(
            f"file exceeds {s.max_file_size} bytes", details={"max_file_size": s.max_file_size}
        )
    if body.length > node.capacity.available_bytes():
        raise StorageFull(
            "not enough room for this file",
            details={"available_bytes": node.capacity.available_bytes()},
        )
    store = store_of(node)
    await _sweep(node, store, now)
    session = {
        "session_id": sid,
        "length": body.length,
        "offset": 0,
        "owner": principal.sub,
        "created_at": now.isoformat(),
        "expires_at": (now + timedelta(seconds=body.expires_in)).isoformat(),
        "content_type": body.content_type,
        "fields": pairs,
        "checksum": checksum,
    }
    async with _session_locked(node, sid):
        exists = await asyncio.to_thread(store.load, sid)
        if exists is not None or await node.store.taken(sid):
            raise Collision(f"file {sid} already exists", details={"file_id": sid})
        txn = await node.journal.begin(KIND, {"session_id": sid, "action": "create"})
        try:
            await asyncio.to_thread(store.create, session)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(store.remove, sid))
            await node.journal.abort(txn)
            raise
        await node.journal.commit(txn, owes_catalog=False)
    return session


async def _sweep(node: SEState, store: SessionStore, now: datetime) -> None:
    """Drop expired and never-committed sessions, each under its own lock: without it a
    concurrent create (no ``session.json`` until its commit point) lost its directory,
    and answered 500, or 201 with its data file gone (a 500 on the first append)."""
    for sid in await asyncio.to_thread(store.stale, now):
        async with _session_locked(node, sid):
            await asyncio.to_thread(store.drop_if_stale, sid, now)


async def _get(node: SEState, principal: Principal, sid: str) -> dict[str, Any]:
    store = store_of(node)
    session = await asyncio.to_thread(store.load, sid)
    if session is None:
        raise NotFound(f"upload session {sid} not found", details={"session_id": sid})
    if session["owner"] != principal.sub:
        raise Forbidden("this upload belongs to someone else", details={"session_id": sid})
    if datetime.fromisoformat(session["expires_at"]) <= utcnow():
        await asyncio.to_thread(store.remove, sid)
        raise FileGone(f"upload session {sid} has expired", details={"session_id": sid})
    return session


async def _take_over(node: SEState, principal: Principal, sid: str) -> None:
    """The session's owner is asking: an append still streaming for it stops now and
    keeps what it has (handover.py); anyone else is refused before disturbing it."""
    await _get(node, principal, sid)
    HANDOVER.ask_to_stop(node.settings.data_dir, sid)


async def status(node: SEState, principal: Principal, sid: str) -> dict[str, Any]:
    # Under the session's lock, after any append still running has ended: the offset
    # answered counts what it kept, and no append moves it right after.
    await _take_over(node, principal, sid)
    async with _session_locked(node, sid):
        return await _get(node, principal, sid)


async def append(
    node: SEState,
    principal: Principal,
    sid: str,
    offset: int,
    expected: tuple[str, str] | None,
    body: AsyncIterator[bytes],
) -> dict[str, Any]:
    """Bytes at ``offset`` (which must be the committed offset); acknowledged durable.

    ``expected`` is (hashlib name, hex digest) of the whole chunk: then it is kept whole
    or not at all. Without it, a body that ends early (the client went away, or its owner
    asked again for the session: handover.py) keeps every byte that arrived: they are
    synced and the offset moves past them before the error is answered, so a tus client
    resumes there rather than from the chunk's start."""
    store = store_of(node)
    chunk_bytes = node.settings.io_chunk_bytes
    await _take_over(node, principal, sid)
    async with _session_locked(node, sid):
        session = await _get(node, principal, sid)
        node.modes.require("upload")
        if offset != session["offset"]:
            raise Conflict(
                "Upload-Offset does not match the upload's offset",
                details={"offset": session["offset"]},
            )
        fd = await asyncio.to_thread(store.open_at, sid, offset)
        hasher = hashlib.new(expected[0] if expected else "sha256")
        received = 0
        buf = bytearray()
        try:
            with HANDOVER.running(node.settings.data_dir, sid) as stop:
                async with contextlib.aclosing(handover.chunks(body, stop)) as stream:
                    async for chunk in stream:
                        received += len(chunk)
                        if offset + received > session["length"]:
                            raise ValidationFailed(
                                "data goes beyond the upload's length",
                                details={"length": session["length"]},
                            )
                        hasher.update(chunk)
                        buf += chunk
                        if len(buf) >= chunk_bytes:
                            data, buf = bytes(buf), bytearray()
                            await asyncio.to_thread(store.write, fd, data)
            if buf:
                await asyncio.to_thread(store.write, fd, bytes(buf))
        except (ClientDisconnect, Superseded) as cut:
            error = BodyCut if isinstance(cut, ClientDisconnect) else Interrupted
            if expected is not None:
                raise error("nothing of this chunk was kept") from None
            if buf:
                await asyncio.shield(asyncio.to_thread(store.write, fd, bytes(buf)))
            await asyncio.shield(_keep(store, fd, session, offset + received))
            fd = -1
            raise error("what arrived was kept", details={"offset": offset + received}) from None
        finally:
            if fd != -1:
                closing, fd = fd, -1
                await asyncio.shield(asyncio.to_thread(store.sync_close, closing))
        if expected and hasher.hexdigest() != expected[1]:
            raise ChecksumMismatch(
                "chunk does not match its checksum; nothing of it was kept",
                details={"expected": expected[1], "actual": hasher.hexdigest()},
            )
        session["offset"] = offset + received
        await asyncio.to_thread(store.save, session)  # the acknowledgement point
    return session


class BodyCut(ArtStoreError):
    """The client went away mid-body (nobody reads the answer; it is logged as a 400)."""

    status, code = 400, "INCOMPLETE_BODY"

    def __init__(self, kept: str, **kw: Any) -> None:
        super().__init__(f"the body ended early; {kept}", **kw)


class Interrupted(ArtStoreError):
    """A newer request for the session (its owner resuming) stopped this append."""

    status, code = 409, "UPLOAD_INTERRUPTED"

    def __init__(self, kept: str, **kw: Any) -> None:
        super().__init__(f"a newer request for this upload stopped this one; {kept}", **kw)


async def _keep(store: SessionStore, fd: int, session: dict[str, Any], offset: int) -> None:
    """Sync the bytes that arrived, then commit the offset past them (the same
    acknowledgement point as a whole append: a crash before it keeps the old offset)."""
    await asyncio.to_thread(store.sync_close, fd)
    session["offset"] = offset
    await asyncio.to_thread(store.save, session)


async def abort(node: SEState, principal: Principal, sid: str) -> None:
    store = store_of(node)
    await _take_over(node, principal, sid)
    async with _session_locked(node, sid):
        await _get(node, principal, sid)
        txn = await node.journal.begin(KIND, {"session_id": sid, "action": "abort"})
        await asyncio.to_thread(store.remove, sid)
        await node.journal.commit(txn, owes_catalog=False)


async def complete(node: SEState, principal: Principal, sid: str) -> Attr:
    """The finished session becomes a normal stored file (the usual write protocol), then
    the session goes. Repeating it after success answers the stored file."""
    store = store_of(node)
    async with _session_locked(node, sid):
        session = await asyncio.to_thread(store.load, sid)
        attr = await node.find_attr(sid)
        if session is None:
            if attr is not None and attr.uploaded_by == principal.sub:
                return attr
            raise NotFound(f"upload session {sid} not found", details={"session_id": sid})
        session = await _get(node, principal, sid)
        if session["offset"] != session["length"]:
            raise Conflict(
                "upload is not complete",
                details={"offset": session["offset"], "length": session["length"]},
            )
        txn = await node.journal.begin(KIND, {"session_id": sid, "action": "complete"})
        try:
            if attr is None:
                owner = str(session["owner"])
                req = UploadRequest(
                    Principal(sub=owner, kind="user", name=owner, scopes=frozenset()),
                    _fields(session["fields"], sid),
                    str(session["content_type"]),
                    int(session["length"]),
                    session.get("checksum"),
                )
                attr = await store_upload(node, req, _data(node, store, sid, session["length"]))
            await asyncio.to_thread(store.remove, sid)
        except BaseException:
            await node.journal.abort(txn)
            raise
        await node.journal.commit(txn, owes_catalog=False)
    return attr


async def _data(node: SEState, store: SessionStore, sid: str, length: int) -> AsyncIterator[bytes]:
    chunks = store.read_chunks(sid, length, node.settings.io_chunk_bytes)
    while (data := await asyncio.to_thread(next, chunks, b"")) != b"":
        yield data
