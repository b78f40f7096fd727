"""Resumable uploads (tus 1.0) over the storage elements' upload sessions.

The ingester keeps nothing: the upload URL names the SE and the session
(``/api/v1/uploads/{storage_id}/{file_id}``; the session id is the id the file gets),
so any ingester replica can continue it, and every acknowledged byte is on the SE's
disk before the ingester answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from artstore.common.auth import Principal
from artstore.common.errors import ChecksumMismatch, NotFound, ValidationFailed
from artstore.common.registry import StorageElementRef
from artstore.common.se_client import Relayed, Unreachable
from artstore.common.text import (
    check_description,
    check_filename,
    check_media_type,
    check_metadata,
    check_tags,
)
from artstore.contracts.files import FileMetadata
from artstore.contracts.se import CONTENT_DIGEST_HEADER
from artstore.ingester.placement.service import choose, copies_wanted
from artstore.ingester.replication.copy import copy_to, locate
from artstore.ingester.state import IngesterState, SeAuth
from artstore.ingester.tus.protocol import TusChecksumMismatch, tags_of
from artstore.ingester.uploads.fields import IngestFields


@dataclass
class Progress:
    offset: int
    length: int
    expires_at: datetime | None
    file: FileMetadata | None = None  # set once the upload has become a stored file


def _first(meta: dict[str, str], *keys: str) -> tuple[str, str] | None:
    """(key, value) of the first of ``keys`` with a non-empty value."""
    for key in keys:
        if meta.get(key):
            return key, meta[key]
    return None


def _session_body(meta: dict[str, str], length: int, expiry: int) -> dict[str, Any]:
    """The SE session for Upload-Metadata, every text checked by the one text policy
    first (400 naming the tus key; nothing is sent to an SE)."""
    fields = IngestFields()
    for key in ("retention_policy", "ttl_days"):
        if key in meta:
            fields.apply(key, meta[key])
    fields.check()
    name = _first(meta, "filename", "name")
    ctype = _first(meta, "filetype", "content_type")
    body: dict[str, Any] = {
        "length": length,
        "filename": check_filename(*name) if name else "file",
        "content_type": check_media_type(*ctype) if ctype else "application/octet-stream",
        "retention_policy": fields.retention_policy,
        "expires_in": expiry,
    }
    if fields.ttl_days is not None:
        body["ttl_days"] = fields.ttl_days
    if "description" in meta:
        body["description"] = check_description(meta["description"])
    if "tags" in meta:
        body["tags"] = check_tags(tags_of(meta["tags"]))
    if "metadata" in meta:
        try:
            data = json.loads(meta["metadata"])
        except ValueError:
            raise ValidationFailed("metadata is not JSON", details={"field": "metadata"}) from None
        body["metadata"] = check_metadata(data)
    if "checksum" in meta:
        body["checksum"] = meta["checksum"]
    return body


async def create(
    ing: IngesterState, principal: Principal, length: int, meta: dict[str, str]
) -> tuple[StorageElementRef, Progress, str]:
    # The SE names the session (and the file): a session goes with the caller's own token,
    # and an id chosen by a user is checked against the catalog (architecture §10), which
    # could refuse it while the catalog is away.
    body = _session_body(meta, length, ing.settings.upload_expiry)
    avoid: frozenset[str] = frozenset()
    no_room: frozenset[str] = frozenset()
    while True:
        # Sessions live on local-disk SEs (an S3-backed SE refuses them).
        kind = body["retention_policy"]
        se = choose(ing, kind, 1, length, exclude=avoid, no_room=no_room, local_only=True)[0]
        headers = await ing.acting_for(principal)(se)
        try:
            data = await ing.se.create_session(se, body, headers)
        except Unreachable:
            ing.capacity.unreachable(se)
            avoid = avoid | {se.storage_id}
            continue
        except Relayed as exc:
            if exc.status != 507:
                raise
            # Less room than placement knew: the next SE.
            ing.capacity.refused_room(se)
            avoid, no_room = avoid | {se.storage_id}, no_room | {se.storage_id}
            continue
        file_id = str(data["session_id"])
        return se, Progress(0, length, datetime.fromisoformat(data["expires_at"])), file_id


def resolve(ing: IngesterState, storage_id: str) -> StorageElementRef:
    se = ing.registry.get(storage_id)
    if se is None:
        raise NotFound("upload not found", details={"storage_element_id": storage_id})
    return se


async def progress(
    ing: IngesterState, principal: Principal, se: StorageElementRef, file_id: str
) -> Progress:
    """Where the upload stands. One whose bytes are all in but which was never stored
    (a crash between the last PATCH and completion) is completed now."""
    auth = ing.acting_for(principal)
    headers = await auth(se)
    session = await ing.se.session(se, file_id, headers)
    if session is None:
        stored = await ing.se.get_file(se, file_id, headers)
        if stored is None or stored.uploaded_by != principal.sub:
            raise NotFound("upload not found", details={"file_id": file_id})
        if copies_wanted(ing, stored.retention_policy) > 1:
            # A replica copy that failed after completion is made up for here.
            await _replicate(ing, se, stored, auth)
        return Progress(stored.size, stored.size, None, stored)
    p = Progress(
        int(session["offset"]),
        int(session["length"]),
        datetime.fromisoformat(session["expires_at"]),
    )
    if p.offset == p.length:
        p.file = await complete(ing, principal, se, file_id)
    return p


async def append(
    ing: IngesterState,
    principal: Principal,
    se: StorageElementRef,
    file_id: str,
    offset: int,
    chunk_digest: str | None,
    length: int | None,
    body: AsyncIterator[bytes],
) -> Progress:
    """``chunk_digest``: the chunk's ``Content-Digest`` for the SE, which checks it (a
    mismatch keeps nothing). Without one, a body cut short keeps what reached the SE's
    disk: the SE commits it when the stream to it breaks, which it does as soon as the
    client's breaks (the ingester holds no bytes of its own)."""
    headers = await ing.acting_for(principal)(se) | {"Content-Type": "application/octet-stream"}
    if chunk_digest:
        headers[CONTENT_DIGEST_HEADER] = chunk_digest
    if length is not None:
        headers["Content-Length"] = str(length)
    try:
        session = await ing.se.append(se, file_id, offset, headers, body)
    except ChecksumMismatch as err:
        raise TusChecksumMismatch(err.message, details=err.details) from err
    p = Progress(
        int(session["offset"]),
        int(session["length"]),
        datetime.fromisoformat(session["expires_at"]),
    )
    if p.offset == p.length:
        p.file = await complete(ing, principal, se, file_id)
    return p


async def complete(
    ing: IngesterState, principal: Principal, se: StorageElementRef, file_id: str
) -> FileMetadata:
    """Store the finished upload on its SE, then (permanent files) make the other
    replicas from that copy."""
    auth = ing.acting_for(principal)
    meta = await ing.se.complete_session(se, file_id, await auth(se))
    if copies_wanted(ing, meta.retention_policy) > 1:
        await _replicate(ing, se, meta, auth)
    return meta


async def _replicate(
    ing: IngesterState, se: StorageElementRef, meta: FileMetadata, auth: SeAuth
) -> None:
    have = [s for s, m in await locate(ing, auth, meta.file_id) if m.status == "active"]
    need = copies_wanted(ing, meta.retention_policy) - len(have)
    if need > 0:
        await copy_to(ing, se, meta, need, auth, avoid=frozenset(s.storage_id for s in have))


async def terminate(
    ing: IngesterState, principal: Principal, se: StorageElementRef, file_id: str
) -> None:
    await ing.se.cancel_session(se, file_id, await ing.acting_for(principal)(se))
