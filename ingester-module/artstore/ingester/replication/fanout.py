"""One body, streamed to N storage elements at once (DESIGN §7 replicas).

A pump reads the source once, hashes it, and puts each chunk into one bounded queue per
SE; each SE upload is an httpx request whose body drains its queue. Memory is at most
``queue_chunks`` chunks per SE, whatever the file size: the slowest SE paces the source.

The pump reads nothing until every SE request has started sending its body (connected,
headers sent). An SE that fails before that point is reported with :class:`BeforeBody`
and the caller may choose another SE and start again with the untouched source.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from artstore.common.errors import ArtStoreError, FileTooLarge, UpstreamUnavailable
from artstore.common.registry import StorageElementRef
from artstore.ingester import upstream
from artstore.ingester.state import Ingester

log = logging.getLogger("artstore.ingester.replication")


class BeforeBodyFailures(UpstreamUnavailable):
    """Every failure happened before the source was touched; ``ses`` should be avoided."""

    def __init__(self, ses: list[StorageElementRef]) -> None:
        super().__init__(
            "storage element unreachable before the upload started",
            details={"storage_element_ids": [se.storage_id for se in ses]},
        )
        self.ses = ses


@dataclass
class Upload:
    """What every SE is asked to store: query fields and headers of ``POST /api/v1/files``."""

    params: list[tuple[str, str]]
    headers: dict[str, str]
    max_size: int


@dataclass
class FanOut:
    copies: list[tuple[StorageElementRef, dict[str, Any]]]
    sha256: str
    size: int


@dataclass
class _Leg:
    se: StorageElementRef
    queue: asyncio.Queue[bytes | None]
    started: bool = False
    dead: bool = False
    task: asyncio.Task[dict[str, Any]] | None = field(default=None, repr=False)

    def die(self) -> None:
        """Nobody reads this queue any more: empty it so a pump waiting to put wakes up,
        and let the pump skip it from now on."""
        self.dead = True
        while not self.queue.empty():
            self.queue.get_nowait()


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


async def _leg(
    ing: Ingester, leg: _Leg, upload: Upload, changed: asyncio.Event, touched: list[bool]
) -> dict[str, Any]:
    async def body() -> AsyncIterator[bytes]:
        leg.started = True
        changed.set()
        while (chunk := await leg.queue.get()) is not None:
            yield chunk

    try:
        resp = await ing.http.post(
            f"{leg.se.url}/api/v1/files",
            params=tuple(upload.params),
            headers=upload.headers,
            content=body(),
        )
    except httpx.HTTPError as exc:
        if not touched[0]:
            raise upstream.BeforeBody(leg.se, type(exc).__name__) from exc
        raise upstream.unreachable(leg.se, exc) from exc
    finally:
        leg.die()
        changed.set()
    if resp.status_code != 201:
        raise upstream.error_from(leg.se, resp)
    data: dict[str, Any] = resp.json()
    return data


async def fan_out(
    ing: Ingester, targets: list[StorageElementRef], source: AsyncIterator[bytes], upload: Upload
) -> FanOut:
    """Stream ``source`` to every target; all must answer 201 with the SHA-256 the
    ingester computed. On any failure every copy already stored is cleaned up (see
    :func:`cleanup`) and the first error is raised.

    The source is never cancelled mid-read: after a failure the pump stops at its next
    chunk, so a batch can go on reading the next part of the same request body.
    """
    changed = asyncio.Event()
    stop = asyncio.Event()
    touched = [False]
    hasher = hashlib.sha256()
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
        async for chunk in source:
            if stop.is_set():
                return
            if not chunk:
                continue
            size += len(chunk)
            if size > upload.max_size:
                raise FileTooLarge(
                    f"file exceeds {upload.max_size} bytes",
                    details={"max_file_size": upload.max_size},
                )
            hasher.update(chunk)
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
    errors = [exc for t in (pump_task, *leg_tasks) if _failed(t) and (exc := t.exception())]
    if errors:
        early = [e.se for e in errors if isinstance(e, upstream.BeforeBody)]
        if len(early) == len(errors) and not touched[0]:
            raise BeforeBodyFailures(early)
        first = errors[0]
        stranded = await cleanup(ing, copies)
        if stranded:
            raise UpstreamUnavailable(
                f"a copy failed ({first}); copies that could not be removed remain",
                details={"error": str(first), "stranded_copies": stranded},
            ) from first
        raise first
    sha = hasher.hexdigest()
    bad = [
        se.storage_id
        for se, meta in copies
        if meta.get("checksum") != f"sha256:{sha}" or meta.get("size") != size
    ]
    if bad:
        stranded = await cleanup(ing, copies)
        raise UpstreamUnavailable(
            "a storage element stored different bytes than were sent",
            details={"storage_element_ids": bad, "sha256": sha, "stranded_copies": stranded},
        )
    return FanOut(copies, sha, size)


async def cleanup(
    ing: Ingester, copies: list[tuple[StorageElementRef, dict[str, Any]]]
) -> list[dict[str, str]]:
    """Remove copies of a failed multi-copy upload. Temporary copies (edit SEs) are
    deleted with the ingester's own account. An rw SE refuses every delete by design
    (DESIGN §5.4), so a permanent copy there stays: it is returned as stranded for the
    error details and the log."""
    stranded: list[dict[str, str]] = []
    for se, meta in copies:
        file_id = str(meta.get("file_id"))
        deleted = False
        if se.mode == "edit":
            with contextlib.suppress(httpx.HTTPError, ArtStoreError):
                resp = await ing.http.delete(
                    f"{se.url}/api/v1/files/{file_id}", headers=await ing.service_headers()
                )
                deleted = resp.status_code in (204, 410)
        if not deleted:
            stranded.append({"storage_element_id": se.storage_id, "file_id": file_id})
            log.error(
                "copy of a failed upload left in place",
                extra={"fields": {"se": se.storage_id, "file_id": file_id}},
            )
    return stranded
