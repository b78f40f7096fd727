"""The preview jobs (docs/previews.md "Jobs"): ``make`` renders one file's previews and
stores them next to every healthy copy; ``scan`` queues ``make`` for new files without
previews; ``backfill`` does the same over the whole catalog.

A file whose ``preview.make`` run failed (a refusal: unsupported, corrupt, a bomb, too
slow) is recorded once in ``jobs.runs`` and never queued again by the scan or the
backfill; one that is skipped (not previewable, too large) ends succeeded with the
reason and is not queued again either. Nothing here writes to an original: the worker
only downloads it, and the render process only gets a copy of its bytes."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from artstore.common.errors import ArtStoreError, UpstreamUnavailable
from artstore.common.redact import describe
from artstore.common.registry import StorageElementRef
from artstore.contracts.files import PREVIEWABLE_TYPES, is_previewable
from artstore.jobs import repository as runs_repo
from artstore.jobs.defer import defer_job
from artstore.jobs.repository import RunRow
from artstore.worker.context import JobContext
from artstore.worker.previews import repository
from artstore.worker.previews.render import render
from artstore.worker.previews.repository import CopyRow, FileRow
from artstore.worker.tasks import JobAborted

log = logging.getLogger("artstore.worker.previews")

PREVIEW_MAKE: Final = "preview.make"
PREVIEW_SCAN: Final = "preview.scan"
PREVIEW_BACKFILL: Final = "preview.backfill"
KINDS: Final = (PREVIEW_MAKE, PREVIEW_SCAN, PREVIEW_BACKFILL)
# preview.make runs here, with WK_PREVIEW_CONCURRENCY slots of its own (worker main.py).
QUEUE: Final = "previews"
# scan and backfill only read the catalog and queue: the worker's ordinary queue.
SCAN_QUEUE: Final = "default"
CONTENT_TYPES: Final = {"webp": "image/webp", "jpeg": "image/jpeg"}
FAILURES_KEPT: Final = 20


class NoSource(UpstreamUnavailable):
    """No healthy copy of the file could be read now."""


# -- one file -----------------------------------------------------------------------------
def _skipped(file_id: str, reason: str) -> dict[str, Any]:
    log.info("no preview of %s: %s", file_id, reason)
    return {"file_id": file_id, "result": "skipped", "reason": reason}


def _online(ctx: JobContext, storage_id: str) -> StorageElementRef | None:
    se = ctx.registry.get(storage_id)
    return se if se is not None and se.status != "offline" else None


async def make(ctx: JobContext, file_id: str) -> dict[str, Any]:
    """Previews of ``file_id`` at every configured size, stored on every SE with a
    healthy copy. Raises PreviewRefused (the run fails, for good) when the file cannot
    give one, NoSource/UpstreamUnavailable when no copy could be read or written."""
    settings = ctx.settings
    async with ctx.engine.connect() as conn:
        rows = await repository.copies(conn, file_id)
    if not rows:
        return _skipped(file_id, "no such file in the catalog")
    speaker = rows[0]
    if speaker.status != "active":
        return _skipped(file_id, f"the file is {speaker.status}")
    if not is_previewable(speaker.content_type):
        return _skipped(file_id, f"no preview is made of {speaker.content_type or 'this type'}")
    if speaker.size > settings.preview_max_input_bytes:
        return _skipped(
            file_id,
            f"{speaker.size} bytes is over WK_PREVIEW_MAX_INPUT_BYTES "
            f"({settings.preview_max_input_bytes})",
        )
    healthy = [r for r in rows if r.status == "active" and r.checksum == speaker.checksum]
    failures: list[dict[str, str]] = []
    data, source = await _read_any(ctx, file_id, speaker, healthy, failures)
    if ctx.should_abort():
        raise JobAborted("preview.make cancelled")
    previews = await render(
        data, settings.render_request(), seconds=settings.preview_timeout_seconds
    )
    del data
    content_type = CONTENT_TYPES[settings.preview_format]
    stored_on: list[str] = []
    for copy in healthy:
        se = _online(ctx, copy.storage_element_id)
        if se is None:
            continue
        try:
            auth = await ctx.se_headers(se.storage_id)
            for size in sorted(previews):
                await ctx.se_client.put_preview(
                    se, file_id, size, previews[size], content_type, auth
                )
        except ArtStoreError as exc:
            _failed(failures, "write", se.storage_id, exc)
            continue
        stored_on.append(se.storage_id)
    if not stored_on:
        raise UpstreamUnavailable(
            f"no storage element took the previews of {file_id}",
            details={"failures": failures},
        )
    return {
        "file_id": file_id,
        "result": "made",
        "sizes": sorted(previews),
        "format": settings.preview_format,
        "bytes": {str(size): len(blob) for size, blob in sorted(previews.items())},
        "source": source,
        "stored_on": stored_on,
        "failures": failures,
    }


def _failed(failures: list[dict[str, str]], step: str, storage_id: str, exc: BaseException) -> None:
    if len(failures) < FAILURES_KEPT:
        failures.append({"step": step, "storage_element_id": storage_id, "error": describe(exc)})


async def _read_any(
    ctx: JobContext,
    file_id: str,
    speaker: CopyRow,
    healthy: list[CopyRow],
    failures: list[dict[str, str]],
) -> tuple[bytes, str]:
    """The original's bytes from the first healthy copy that gives them whole and with
    its checksum (bounded: never more than its catalogued size)."""
    expected = speaker.checksum.removeprefix("sha256:")
    for copy in healthy:
        se = _online(ctx, copy.storage_element_id)
        if se is None:
            continue
        hasher = hashlib.sha256()
        parts: list[bytes] = []
        got = 0
        try:
            auth = await ctx.se_headers(se.storage_id)
            async for chunk in ctx.se_client.download(se, file_id, auth):
                got += len(chunk)
                if got > speaker.size:
                    raise NoSource(f"the copy on {se.storage_id} is longer than catalogued")
                hasher.update(chunk)
                parts.append(chunk)
        except ArtStoreError as exc:
            _failed(failures, "read", se.storage_id, exc)
            continue
        if got != speaker.size or hasher.hexdigest() != expected:
            _failed(
                failures, "read", se.storage_id, NoSource("the copy does not match its checksum")
            )
            continue
        return b"".join(parts), se.storage_id
    raise NoSource(f"no healthy copy of {file_id} could be read", details={"failures": failures})


# -- queueing -----------------------------------------------------------------------------
def _eligible(row: FileRow, last: RunRow | None, sizes: tuple[int, ...], backfill: bool) -> bool:
    """Whether ``row`` is owed a preview.make run now. Never again after a failed or a
    skipped run; never while one is queued or running; a cancelled run does not count.
    The backfill also re-makes files whose last run made previews that the catalog no
    longer lists (a size added to WK_PREVIEW_SIZES, previews lost)."""
    if set(sizes) <= set(row.previews):
        return False
    if last is None or last.state == "cancelled":
        return True
    if backfill and last.state == "succeeded":
        return (last.summary or {}).get("result") == "made"
    return False


async def _queue(ctx: JobContext, page: list[FileRow], backfill: bool, by: str) -> dict[str, int]:
    counts = {"deferred": 0, "already_queued": 0, "not_owed": 0}
    sizes = ctx.settings.sizes()
    async with ctx.engine.connect() as conn:
        last = await runs_repo.latest_by_target(conn, PREVIEW_MAKE, [r.file_id for r in page])
    for row in page:
        if not _eligible(row, last.get(row.file_id), sizes, backfill):
            counts["not_owed"] += 1
            continue
        run_id = await defer_job(
            ctx.queue,
            ctx.engine,
            PREVIEW_MAKE,
            args={"file_id": row.file_id},
            target=row.file_id,
            requested_by=by,
            dedupe=f"{PREVIEW_MAKE}:{row.file_id}",
            queue_name=QUEUE,
        )
        counts["deferred" if run_id is not None else "already_queued"] += 1
    return counts


async def _walk(ctx: JobContext, backfill: bool) -> dict[str, Any]:
    s = ctx.settings
    since = datetime.now(UTC) - timedelta(hours=s.preview_scan_hours)
    totals = {"scanned": 0, "deferred": 0, "already_queued": 0, "not_owed": 0}
    after: str | None = None
    kind = PREVIEW_BACKFILL if backfill else PREVIEW_SCAN
    while True:
        if ctx.should_abort():
            raise JobAborted(f"{kind} cancelled")
        async with ctx.engine.connect() as conn:
            if backfill:
                page = await repository.page(
                    conn, after, s.preview_batch, PREVIEWABLE_TYPES, s.preview_max_input_bytes
                )
            else:
                page = await repository.recent_without_previews(
                    conn,
                    since,
                    after,
                    s.preview_batch,
                    PREVIEWABLE_TYPES,
                    s.preview_max_input_bytes,
                )
        if not page:
            break
        after = page[-1].file_id
        totals["scanned"] += len(page)
        for key, n in (await _queue(ctx, page, backfill, kind)).items():
            totals[key] += n
    return totals


async def scan(ctx: JobContext) -> dict[str, Any]:
    """Files uploaded or finalized in the last WK_PREVIEW_SCAN_HOURS without previews."""
    return await _walk(ctx, backfill=False)


async def backfill(ctx: JobContext) -> dict[str, Any]:
    """Every live previewable file lacking a configured size, a page at a time."""
    return await _walk(ctx, backfill=True)
