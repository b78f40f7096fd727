"""One body, streamed to N storage elements at once (architecture §7 replicas).

A pump reads the source once, hashes it, and puts each chunk into one bounded queue per
SE; each SE upload is a request (common/lean_http.py; httpx for https SEs) whose body
drains its queue. Memory is at most ``queue_chunks`` chunks per SE, whatever the file
size: the slowest SE paces the source.

The pump reads nothing until every SE request has started sending its body (connected,
headers sent). When every failure is one the next SE can fix (unreachable before the
body, 507 no room, 409 mode changed) and no copy was stored, :class:`TryElsewhere` is
raised and the caller places the file again: always possible while nothing of the
source was read, and afterwards as long as :class:`Replay` still holds what was read
(the first ``IG_RETRY_BUFFER_BYTES`` of the body).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from artstore.common.errors import (
    ArtStoreError,
    FileTooLarge,
    ModeNotAllowed,
    UpstreamUnavailable,
)
from artstore.common.registry import StorageElementRef
from artstore.common.se_client import Relayed, Unreachable
from artstore.common.se_tokens import ExchangeRefused
from artstore.contracts.files import FileMetadata
from artstore.ingester.state import IngesterState

log = logging.getLogger("artstore.ingester.replication")


class BeforeBody(UpstreamUnavailable):
    """The SE failed before any byte of the body left: the upload may go elsewhere."""

    def __init__(self, se: StorageElementRef, reason: str) -> None:
        super().__init__(
            f"storage element {se.storage_id} unreachable: {reason}",
            details={"storage_element_id": se.storage_id},
        )
        self.se = se


class TryElsewhere(UpstreamUnavailable):
    """Every failure can be fixed by other SEs (``ses`` should be avoided), nothing was
    stored, and the source can be sent again from its start. ``no_room``: those of
    ``ses`` that answered 507."""

    def __init__(self, ses: list[StorageElementRef], no_room: list[StorageElementRef]) -> None:
        super().__init__(
            "storage element unreachable or refused the file before it was stored",
            details={"storage_element_ids": [se.storage_id for se in ses]},
        )
        self.ses = ses
        self.no_room = no_room


class Replay:
    """An upload's body, read once, that can be sent again from its start while the part
    read so far is at most ``limit`` bytes (the chunks are kept, not copied).

    ``restartable``: the caller makes a new source for every attempt (a copy read from
    another SE), so any attempt may be repeated."""

    def __init__(
        self, source: AsyncIterator[bytes], limit: int, *, restartable: bool = False
    ) -> None:
        self._source = source
        self._limit = limit
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self._lost = False
        self._ended = False
        self.restartable = restartable

    async def prefetch(self, limit: int) -> int | None:
        """Read ahead until ``limit`` bytes are held or the body ended; the body's
        length when it ended (it can then be announced with ``Content-Length``)."""
        while not self._ended and self._kept_bytes < limit:
            try:
                chunk = await anext(self._source)
            except StopAsyncIteration:
                self._ended = True
                break
            self._kept.append(chunk)  # kept even past _limit: not sent yet
            self._kept_bytes += len(chunk)
        return self._kept_bytes if self._ended else None

    @property
    def replayable(self) -> bool:
        return self.restartable or not self._lost

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in list(self._kept):
            yield chunk
        if self._ended:
            return
        async for chunk in self._source:
            if not self._lost:
                self._kept_bytes += len(chunk)
                if self._kept_bytes <= self._limit:
                    self._kept.append(chunk)
                else:
                    self._lost = True
                    self._kept.clear()
            yield chunk
        self._ended = True


@dataclass
class Upload:
    """What every SE is asked to store: query fields and headers of ``POST /api/v1/files``."""

    params: list[tuple[str, str]]
    headers: dict[str, str]
    max_size: int
    # The hex SHA-256 sent in X-Checksum-SHA256: every SE refuses (422) bytes that do
    # not have it, so the ingester need not hash them itself to check the copies.
    sha256: str | None = None
    # Sent with the ingester's own token bound to each SE (``IngesterState.service_headers``;
    # ``headers`` then carry no Authorization): the copy is written for the uploader
    # named in ``params`` (contracts.copies.history_params), under an id the ingester chose
    # (architecture §10: only services state history or reuse ids).
    as_service: bool = False


@dataclass
class FanOut:
    copies: list[tuple[StorageElementRef, FileMetadata]]
    sha256: str
    size: int


@dataclass
class _Leg:
    se: StorageElementRef
    queue: asyncio.Queue[bytes | None]
    started: bool = False
    dead: bool = False
    task: asyncio.Task[FileMetadata] | None = field(default=None, repr=False)

    def die(self) -> None:
        """Nobody reads this queue any more: empty it so a pump waiting to put wakes up,
        and let the pump skip it from now on."""
        self.dead = True
        while not self.queue.empty():
            self.queue.get_nowait()


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


async def _send_to(
    ing: IngesterState,
    se: StorageElementRef,
    upload: Upload,
    body: AsyncIterator[bytes],
    start: Callable[[], None],
    touched: Callable[[], bool],
) -> FileMetadata:
    """One SE upload; its 201 answer, or the SE's failure as our error (``BeforeBody``
    while nothing of the source was read). What ``body`` raises passes through as is."""
    headers = upload.headers
    try:
        if upload.as_service:  # bound to this SE alone (architecture §10)
            headers = {**headers, **await ing.service_headers(se)}
        return await ing.se.upload(se, upload.params, headers, body, on_start=start)
    except (Unreachable, ExchangeRefused) as exc:
        if not touched():
            reason = exc.reason if isinstance(exc, Unreachable) else type(exc).__name__
            raise BeforeBody(se, reason) from exc
        raise


async def _leg(
    ing: IngesterState, leg: _Leg, upload: Upload, changed: asyncio.Event, touched: list[bool]
) -> FileMetadata:
    def start() -> None:
        leg.started = True
        changed.set()

    async def body() -> AsyncIterator[bytes]:
        while (chunk := await leg.queue.get()) is not None:
            yield chunk

    try:
        return await _send_to(ing, leg.se, upload, body(), start, lambda: touched[0])
    finally:
        leg.die()
        changed.set()


def _refusal(exc: BaseException) -> str | None:
    """``room`` or ``mode`` when an SE refused the file in a way the next SE may not."""
    if isinstance(exc, Relayed):
        if exc.status == 507:
            return "room"
        if isinstance(exc, ModeNotAllowed):
            return "mode"
    return None


async def fan_out(
    ing: IngesterState, targets: list[StorageElementRef], source: Replay, upload: Upload
) -> FanOut:
    """Stream ``source`` to every target; all must answer 201 with the SHA-256 the
    ingester computed. A failure the next SE may not have, with nothing stored and the
    source still replayable, raises :class:`TryElsewhere`. On any other failure every
    copy already stored is cleaned up (see :func:`cleanup`) and the first error is raised.

    The source is never cancelled mid-read: after a failure the pump stops at its next
    chunk, so a batch can go on reading the next part of the same request body.
    """
    if len(targets) == 1:
        got = await _one(ing, targets[0], source, upload)
    else:
        got = await _many(ing, targets, source, upload)
    return await _conclude(ing, source, upload, got)


@dataclass
class _Sent:
    """What one attempt came to, whichever way it was sent."""

    copies: list[tuple[StorageElementRef, FileMetadata]]
    failed: list[tuple[StorageElementRef, BaseException]]
    source_error: BaseException | None  # the source failed (size, bad body, client gone)
    touched: bool
    size: int
    sha256: str


def _hasher(upload: Upload) -> Any:
    return None if upload.sha256 else hashlib.sha256()


async def _one(ing: IngesterState, se: StorageElementRef, source: Replay, upload: Upload) -> _Sent:
    """One copy: the SE request reads the source itself (no pump task, no queue)."""
    hasher = _hasher(upload)
    size = 0
    touched = False
    source_error: BaseException | None = None

    async def body() -> AsyncIterator[bytes]:
        nonlocal size, touched, source_error
        touched = True
        try:
            async for chunk in source.chunks():
                if not chunk:
                    continue
                size = _take(upload, hasher, size, chunk)
                yield chunk
        except Exception as exc:
            source_error = exc
            raise

    copies: list[tuple[StorageElementRef, FileMetadata]] = []
    failed: list[tuple[StorageElementRef, BaseException]] = []
    try:
        copies.append((se, await _send_to(ing, se, upload, body(), _nothing, lambda: touched)))
    except Exception as exc:
        if exc is not source_error:
            failed.append((se, exc))
    sha = hasher.hexdigest() if hasher is not None else str(upload.sha256)
    return _Sent(copies, failed, source_error, touched, size, sha)


def _nothing() -> None:
    return None


def _take(upload: Upload, hasher: Any, size: int, chunk: bytes) -> int:
    """The size with ``chunk`` counted (refused past the limit); the chunk hashed."""
    size += len(chunk)
    if size > upload.max_size:
        raise FileTooLarge(
            f"file exceeds {upload.max_size} bytes", details={"max_file_size": upload.max_size}
        )
    if hasher is not None:
        hasher.update(chunk)
    return size


async def _many(
    ing: IngesterState, targets: list[StorageElementRef], source: Replay, upload: Upload
) -> _Sent:
    """Several copies: a pump reads the source once into one bounded queue per SE."""
    changed = asyncio.Event()
    stop = asyncio.Event()
    touched = [False]
    hasher = _hasher(upload)
    size = 0
    legs = [_Leg(se, asyncio.Queue(maxsize=ing.settings.queue_chunks)) for se in targets]
    for leg in legs:
        leg.task = asyncio.create_task(_leg(ing, leg, upload, changed, touched))
    leg_tasks = [leg.task for leg in legs if leg.task is not None]

    async def pump() -> None:
        nonlocal size
        while not all(leg.started for leg in legs):
            changed.clear()
            if stop.is_set() or any(task.done() for task in leg_tasks):
                return  # a leg failed before the body started: leave the source untouched
            await changed.wait()
        touched[0] = True
        async for chunk in source.chunks():
            if stop.is_set():
                return
            if not chunk:
                continue
            size = _take(upload, hasher, size, chunk)
            for leg in legs:
                if not (leg.dead or stop.is_set()):
                    await leg.queue.put(chunk)
        for leg in legs:
            if not (leg.dead or stop.is_set()):
                await leg.queue.put(None)

    pump_task = asyncio.create_task(pump())
    pending: set[asyncio.Task[Any]] = {pump_task, *leg_tasks}
    try:
        while pending:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(_failed(t) for t in (pump_task, *leg_tasks)) and not stop.is_set():
                # Dropping the other SE requests makes each SE roll its partial write back.
                stop.set()
                for task in leg_tasks:
                    task.cancel()
                changed.set()  # wake a pump still waiting for the legs to start
    finally:
        if pending:  # we were cancelled ourselves (shutdown): leave nothing running
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    copies = [
        (leg.se, leg.task.result())
        for leg in legs
        if leg.task is not None and leg.task.done() and not leg.task.cancelled()
        if leg.task.exception() is None
    ]
    failed_legs: list[tuple[StorageElementRef, BaseException]] = [
        (leg.se, exc)
        for leg in legs
        if leg.task is not None and _failed(leg.task) and (exc := leg.task.exception())
    ]
    pump_error = pump_task.exception() if _failed(pump_task) else None
    sha = hasher.hexdigest() if hasher is not None else str(upload.sha256)
    return _Sent(copies, failed_legs, pump_error, touched[0], size, sha)


async def _conclude(ing: IngesterState, source: Replay, upload: Upload, got: _Sent) -> FanOut:
    copies, failed_legs, pump_error = got.copies, got.failed, got.source_error
    errors = [*([pump_error] if pump_error else []), *(exc for _, exc in failed_legs)]
    if errors:
        elsewhere = True
        no_room = []
        for se, exc in failed_legs:
            why = _refusal(exc)
            if why == "room":
                no_room.append(se)
                ing.capacity.refused_room(se)
            elif why == "mode":
                ing.capacity.refused_mode(se)
            elif isinstance(exc, BeforeBody):
                ing.capacity.unreachable(se)
            else:
                elsewhere = False
        replayable = not got.touched or source.replayable
        if elsewhere and pump_error is None and not copies and replayable:
            raise TryElsewhere([se for se, _ in failed_legs], no_room)
        first = errors[0]
        stranded = await cleanup(ing, copies)
        if stranded:
            raise UpstreamUnavailable(
                f"a copy failed ({first}); copies that could not be removed remain",
                details={"error": str(first), "stranded_copies": stranded},
            ) from first
        raise first
    sha, size = got.sha256, got.size
    bad = [
        se.storage_id
        for se, meta in copies
        if meta.checksum != f"sha256:{sha}" or meta.size != size
    ]
    if bad:
        stranded = await cleanup(ing, copies)
        raise UpstreamUnavailable(
            "a storage element stored different bytes than were sent",
            details={"storage_element_ids": bad, "sha256": sha, "stranded_copies": stranded},
        )
    return FanOut(copies, sha, size)


async def cleanup(
    ing: IngesterState, copies: list[tuple[StorageElementRef, FileMetadata]]
) -> list[dict[str, str]]:
    """Remove copies of a failed multi-copy upload. Temporary copies (edit SEs) are
    deleted with the ingester's own account. An rw SE refuses every delete by design
    (architecture §5.4), so a permanent copy there stays: it is returned as stranded for the
    error details and the log."""
    stranded: list[dict[str, str]] = []
    for se, meta in copies:
        file_id = meta.file_id
        deleted = False
        if se.mode == "edit":
            with contextlib.suppress(ArtStoreError):
                await ing.se.delete_file(se, file_id, await ing.service_headers(se))
                deleted = True  # 204, or 410: a tombstone already
        if not deleted:
            stranded.append({"storage_element_id": se.storage_id, "file_id": file_id})
            log.error(
                "copy of a failed upload left in place",
                extra={"fields": {"se": se.storage_id, "file_id": file_id}},
            )
    return stranded
