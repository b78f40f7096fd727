"""Storing one file: placement, then the body streamed to every copy's SE at once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from artstore.common.auth import Principal
from artstore.contracts.copies import history_params
from artstore.contracts.se import CHECKSUM_HEADER
from artstore.ingester.placement.service import choose, copies_wanted
from artstore.ingester.replication.fanout import Replay, TryElsewhere, Upload, fan_out
from artstore.ingester.state import IngesterState
from artstore.ingester.uploads.fields import IngestFields
from artstore.ingester.uploads.schemas import StoredFile


@dataclass
class Incoming:
    fields: IngestFields
    content_type: str
    # Known for a raw body (Content-Length); the SE then refuses early (413/507).
    length: int | None = None
    # What placement needs room for: the length, or an estimate (multipart envelope).
    size_hint: int = 0
    expected_sha256: str | None = None
    file_id: str | None = None


def _content_type(value: str) -> str:
    # A raw body labelled multipart/form-data would be parsed as a form by the SE.
    value = value.strip() or "application/octet-stream"
    return "application/octet-stream" if value.lower().startswith("multipart/") else value


async def store(
    ing: IngesterState, principal: Principal, incoming: Incoming, source: AsyncIterator[bytes]
) -> StoredFile:
    """Place and write every copy of one file; 201-ready metadata, or an ArtStoreError."""
    fields = incoming.fields
    fields.check()
    count = copies_wanted(ing, fields.retention_policy)
    file_id = incoming.file_id or str(uuid.uuid4())
    # Every copy goes with the ingester's own token (as_service), naming the caller as
    # the uploader: the id is the ingester's choice (architecture §10, replication/fanout.py).
    headers = {"Content-Type": _content_type(incoming.content_type)}
    if incoming.expected_sha256:
        headers[CHECKSUM_HEADER] = incoming.expected_sha256
    body = Replay(source, ing.settings.retry_buffer_bytes)
    length, size_hint = incoming.length, incoming.size_hint
    if length is None and ing.settings.retry_buffer_bytes > 0:
        # A multipart part (or a chunked body): a small one is read first, so the SE
        # gets its Content-Length (early 413/507, its small-file path) and placement
        # its size. Bounded like the retry buffer, which keeps these bytes anyway.
        length = await body.prefetch(ing.settings.retry_buffer_bytes)
        if length is not None:
            size_hint = length
    if length is not None:
        headers["Content-Length"] = str(length)
    upload = Upload(
        fields.params(file_id) + history_params(principal.sub, datetime.now(UTC)),
        headers,
        ing.settings.max_file_size,
        incoming.expected_sha256,
        as_service=True,
    )
    avoid: frozenset[str] = frozenset()
    no_room: frozenset[str] = frozenset()
    while True:
        targets = choose(
            ing, fields.retention_policy, count, size_hint, exclude=avoid, no_room=no_room
        )
        try:
            result = await fan_out(ing, targets, body, upload)
        except TryElsewhere as exc:
            # Nothing stored, and the body can be sent again from its start: other SEs.
            avoid = avoid | {se.storage_id for se in exc.ses}
            no_room = no_room | {se.storage_id for se in exc.no_room}
            continue
        except BaseException:
            ing.stats.uploads_failed += 1
            raise
        break
    ing.stats.files_stored += 1
    ing.stats.bytes_stored += result.size
    # End to end: each SE checked the client's digest (when sent) on what it received,
    # and fan_out checked each SE's digest against what the ingester sent.
    return StoredFile.from_copies([meta for _, meta in result.copies])
