"""``POST /api/v1/files/batch``: many file parts, each stored on its own (architecture §7).

Parts are read in order from one streamed body; each is placed and written like a
single upload. A part that fails is reported and skipped; the others are stored. Fields
apply to the file parts that follow them (send them first to apply them to all); a
field refused by the text policy fails every part that follows it (nothing of theirs
is forwarded), and a part whose own filename or content type is refused fails alone.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from artstore.common.auth import Principal
from artstore.common.errors import ArtStoreError, FileTooLarge, ValidationFailed
from artstore.common.multipart import Event, Field, FileStart
from artstore.contracts.se import FILE_PART
from artstore.ingester.state import IngesterState
from artstore.ingester.uploads.fields import IngestFields
from artstore.ingester.uploads.parts import PartBody
from artstore.ingester.uploads.schemas import BatchItem, BatchResult, ItemError
from artstore.ingester.uploads.service import Incoming, store

log = logging.getLogger("artstore.ingester.batch")


def _failed(filename: str, exc: ArtStoreError) -> BatchItem:
    error = ItemError(code=exc.code, message=exc.message, details=exc.details)
    return BatchItem(filename=filename, status="failed", error=error)


async def capped(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The request body, cut off with 413 past ``limit`` bytes (a body without
    Content-Length is only known to be too large once it is)."""
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise FileTooLarge(f"batch exceeds {limit} bytes", details={"batch_max_bytes": limit})
        yield chunk


async def store_batch(
    ing: IngesterState, principal: Principal, events: AsyncIterator[Event]
) -> BatchResult:
    fields = IngestFields()
    items: list[BatchItem] = []
    files = 0
    refused: ArtStoreError | None = None  # a field the parts that follow cannot have
    try:
        async for event in events:
            if isinstance(event, Field):
                try:
                    fields.apply(event.name, event.value)
                except ArtStoreError as exc:
                    refused = refused or exc
                continue
            if not isinstance(event, FileStart):
                continue
            files += 1
            part = PartBody(events)
            name = event.filename or "file"
            if event.name != FILE_PART:
                items.append(_failed(name, _bad(f"each file part must be named '{FILE_PART}'")))
            elif event.error is not None:  # its filename or content type is not valid text
                items.append(_failed(name, event.error))
            elif refused is not None:
                items.append(_failed(name, refused))
            elif files > ing.settings.batch_max_files:
                items.append(
                    _failed(name, _bad(f"a batch holds at most {ing.settings.batch_max_files}"))
                )
            else:
                items.append(await _one(ing, principal, fields, event, part))
            await part.drain()
    except ArtStoreError as exc:
        if files == 0:  # nothing was tried: the request itself is refused
            raise
        # The body itself broke (malformed, over the batch size, client gone): what was
        # stored stays stored and is reported; the part being read failed.
        log.warning("batch cut short: %s", exc)
        if files > len(items):
            items.append(_failed("file", exc))
    stored = sum(1 for i in items if i.status == "stored")
    return BatchResult(items=items, stored=stored, failed=len(items) - stored)


def _bad(message: str) -> ArtStoreError:
    return ValidationFailed(message)


async def _one(
    ing: IngesterState, principal: Principal, fields: IngestFields, start: FileStart, part: PartBody
) -> BatchItem:
    name = start.filename or "file"
    own = fields.copy()
    own.filename = name  # each part is named by its own filename
    incoming = Incoming(own, start.content_type)
    try:
        stored = await store(ing, principal, incoming, part.chunks())
    except ArtStoreError as exc:
        return _failed(name, exc)
    return BatchItem(filename=name, status="stored", file=stored)
