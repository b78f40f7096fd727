"""Copies of a stored file made from another copy (finalize, tus replicas): the blob is
streamed from one SE to others under the same file id, with its metadata."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from artstore.common.registry import StorageElementRef
from artstore.common.se_client import Unreachable
from artstore.common.se_tokens import ExchangeRefused
from artstore.contracts.copies import copy_params
from artstore.contracts.files import FileMetadata
from artstore.contracts.se import CHECKSUM_HEADER
from artstore.ingester.placement.service import choose
from artstore.ingester.replication.fanout import Replay, TryElsewhere, Upload, fan_out
from artstore.ingester.state import IngesterState, SeAuth


async def locate(
    ing: IngesterState, auth: SeAuth, file_id: str
) -> list[tuple[StorageElementRef, FileMetadata]]:
    """Every copy of ``file_id`` on an SE the registry lists as readable (any status).
    An SE that cannot be asked is skipped: the ingester keeps no catalog of its own."""

    async def ask(se: StorageElementRef) -> tuple[StorageElementRef, FileMetadata] | None:
        try:
            meta = await ing.se.get_file(se, file_id, await auth(se))
        except (Unreachable, ExchangeRefused):
            return None
        return None if meta is None else (se, meta)

    ses = [se for se in ing.registry.all() if ing.registry.readable(se.storage_id)]
    found = await asyncio.gather(*(ask(se) for se in ses))
    return [f for f in found if f is not None]


async def download(
    ing: IngesterState, se: StorageElementRef, file_id: str, auth: SeAuth
) -> AsyncIterator[bytes]:
    """The blob of one copy as a stream (opened only when first read)."""
    async for chunk in ing.se.download(se, file_id, await auth(se)):
        yield chunk


async def copy_to(
    ing: IngesterState,
    source_se: StorageElementRef,
    meta: FileMetadata,
    count: int,
    auth: SeAuth,
    *,
    retention: str = "permanent",
    avoid: frozenset[str] = frozenset(),
    finalized: tuple[str, str] | None = None,
) -> list[tuple[StorageElementRef, FileMetadata]]:
    """``count`` new copies of the file ``meta`` describes (read from ``source_se`` with
    ``auth``) on SEs of ``retention``'s kind other than ``avoid``; each SE verifies
    the known checksum on what it receives. The copies are written with the ingester's
    own account and keep ``meta``'s uploader and upload time (``finalized``: who made
    the file permanent, and when)."""
    file_id = meta.file_id
    upload_headers = {
        "Content-Type": meta.content_type or "application/octet-stream",
        CHECKSUM_HEADER: meta.checksum.removeprefix("sha256:"),
        "Content-Length": str(meta.size),
    }
    upload = Upload(
        copy_params(meta, retention, finalized),
        upload_headers,
        meta.size,
        upload_headers[CHECKSUM_HEADER],
        as_service=True,
    )
    no_room: frozenset[str] = frozenset()
    while True:
        targets = choose(ing, retention, count, meta.size, exclude=avoid, no_room=no_room)
        # A new download for every attempt: any attempt may be repeated elsewhere.
        source = Replay(download(ing, source_se, file_id, auth), 0, restartable=True)
        try:
            result = await fan_out(ing, targets, source, upload)
        except TryElsewhere as exc:
            avoid = avoid | {se.storage_id for se in exc.ses}
            no_room = no_room | {se.storage_id for se in exc.no_room}
            continue
        return result.copies
