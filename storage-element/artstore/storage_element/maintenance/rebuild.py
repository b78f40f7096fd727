"""rebuild-index: this SE's catalog rows from its attr files alone (architecture §5.6).

One pass, streamed (issue 7): the walk lists the attr files folder by folder (issue 19:
no list of them all); a few threads read and
decode them in chunks (``attr.row.decode_row``: the checks of ``decode``, cheaper) while
the writer (``catalog.bulk.replace_rows``) COPYs the chunks already decoded and upserts
them in its one transaction, so reading and decoding overlap PostgreSQL's index work.
Nothing is held but the chunks in flight.

A file whose row PostgreSQL would refuse for its data (issue 11) does not fail the
rebuild: the readers screen each row (``attr.row.unstorable``: a NUL, a lone surrogate)
and the writer halves a chunk refused anyway until it finds the row; such files are
reported (count and ids, with a reason code) and every other file is indexed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
)
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from artstore.storage_element.attr.model import BadAttr
from artstore.storage_element.attr.row import (
    FILE_ID,
    STATUS,
    UPLOADED_AT,
    Row,
    decode_row,
    unstorable,
)
from artstore.storage_element.backends.local import LocalBackend
from artstore.storage_element.catalog.errors import safe_reason
from artstore.storage_element.files.index import Entry
from artstore.storage_element.maintenance.walk import Reader, attr_reader, copies

if TYPE_CHECKING:
    from artstore.storage_element.backends.base import Backend
    from artstore.storage_element.catalog.repository import CatalogRepository
    from artstore.storage_element.state import SEState

log = logging.getLogger("artstore.storage_element.rebuild")

CHUNK = 2000  # attrs per chunk: one COPY and one upsert each
FIRST_CHUNK = 250  # chunks grow from this to CHUNK: PostgreSQL starts sooner
READERS = {"local": 2, "other": 16}  # threads reading and decoding (S3 waits on the network)

Progress = Callable[[int, int], None]
# The file index's adopt (online only): copies found by the walk, offered to the index.
Adopt = Callable[[Sequence[tuple[str, Entry]]], int]
# Writes the rows, adds the rows PostgreSQL refused to the dict (file id -> reason code),
# returns how many were written.
RowWriter = Callable[[AsyncIterator[list[Row]], dict[str, str]], Awaitable[int]]
SHOWN_REFUSED = 100  # ids listed in maintenance status


@dataclass
class RebuildResult:
    written: int  # rows written
    bad: int  # attrs unreadable or damaged (reconcile reports and quarantines them)
    refused: dict[str, str] = field(default_factory=dict)  # file id -> reason code


def _path_chunks(backend: Backend) -> Iterator[list[str]]:
    """The storage paths of the attrs, from the folder-by-folder walk (issue 19: no list
    of every path), in chunks of FIRST_CHUNK growing to CHUNK (PostgreSQL starts
    sooner). Local disk: no ``stat`` per entry (a third of a rebuild's Python time
    went there once)."""
    size, batch = min(FIRST_CHUNK, CHUNK), []
    for listed in copies(backend, chunk=CHUNK, sizes=False):
        for copy in listed:
            if not copy.attr:
                continue
            batch.append(copy.path)
            if len(batch) >= size:
                yield batch
                batch, size = [], min(2 * size, CHUNK)
    if batch:
        yield batch


def _decode_chunk(
    read: Reader, paths: list[str], adopt: Adopt | None = None
) -> tuple[list[Row], int, dict[str, str]]:
    """(rows to write, bad attrs, rows PostgreSQL would refuse: file id -> reason).
    ``adopt`` (online): every decoded copy is offered to the file index, which keeps
    the ones it lacks (attrs written by hand or by an older version)."""
    rows, bad, refused = [], 0, {}
    seen: list[tuple[str, Entry]] = []
    for path in paths:
        try:
            row = decode_row(read(path))
        except (FileNotFoundError, BadAttr):
            bad += 1  # gone meanwhile, or damaged: reconcile reports and quarantines it
            continue
        if adopt is not None:
            seen.append((path, Entry(str(row[FILE_ID]), row[STATUS], row[UPLOADED_AT])))
        reason = unstorable(row)
        if reason is None:
            rows.append(row)
        else:
            refused[str(row[FILE_ID])] = reason
    if adopt is not None and seen:
        adopt(seen)
    return rows, bad, refused


async def rebuild_with(
    backend: Backend,
    write: RowWriter,
    progress: Progress | None = None,
    adopt: Adopt | None = None,
) -> RebuildResult:
    """Walk, read and decode every attr and hand the rows to ``write`` chunk by chunk."""
    listed = bad = 0
    refused: dict[str, str] = {}
    read = attr_reader(backend)
    readers = READERS["local" if isinstance(backend, LocalBackend) else "other"]
    pool = ThreadPoolExecutor(readers, thread_name_prefix="rebuild")
    walk = _path_chunks(backend)
    walking = threading.Lock()  # the walk is one generator: one reader advances it

    def next_chunk() -> tuple[list[Row], int, dict[str, str]] | None:
        nonlocal listed
        with walking:
            paths = next(walk, None)
            if paths is None:
                return None
            listed += len(paths)
        return _decode_chunk(read, paths, adopt)

    async def chunks() -> AsyncGenerator[list[Row]]:
        nonlocal bad
        ahead: deque[Future[tuple[list[Row], int, dict[str, str]] | None]] = deque()
        done, ended = 0, False
        while True:
            while not ended and len(ahead) < 2 * readers:
                ahead.append(pool.submit(next_chunk))
            if not ahead:
                return
            got = await asyncio.wrap_future(ahead.popleft())
            if got is None:
                ended = True  # the walk is over; the chunks still ahead are drained
                continue
            rows, failed, screened = got
            bad += failed
            refused.update(screened)
            yield rows
            done += len(rows) + failed + len(screened)  # the writer has taken this chunk
            if progress:
                progress(done, listed)  # the total grows as the walk lists

    try:
        async with aclosing(chunks()) as rows:
            written = await write(rows, refused)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if progress:
        progress(listed, listed)
    return RebuildResult(written, bad, refused)


async def rebuild(
    backend: Backend,
    repo: CatalogRepository,
    progress: Progress | None = None,
    adopt: Adopt | None = None,
) -> RebuildResult:
    """Replace this SE's rows with what its attrs say."""
    from artstore.storage_element.catalog.bulk import replace_rows_via

    return await rebuild_with(
        backend,
        lambda rows, refused: replace_rows_via(repo.engine, repo.se_id, rows, refused),
        progress,
        adopt,
    )


async def rebuild_offline(backend: Backend, database_url: str, se_id: str) -> RebuildResult:
    """``rebuild`` on a plain asyncpg connection (the offline command: no engine, and
    no SQLAlchemy to import)."""
    import asyncpg

    from artstore.storage_element.catalog.bulk import replace_rows

    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=5.0)
    try:
        return await rebuild_with(
            backend, lambda rows, refused: replace_rows(conn, se_id, rows, refused)
        )
    finally:
        await conn.close()


def start_rebuild(node: SEState) -> str:
    """Start the online job (202); progress and outcome in maintenance status."""
    repo = node.catalog.repo
    if repo is None:
        from artstore.common.errors import ServiceUnavailable

        raise ServiceUnavailable("no catalog configured (DATABASE_URL is empty)")
    node.maintenance.claim("rebuild-index")
    state = node.maintenance.rebuild
    state.job_id, state.state, state.done, state.total, state.error = (
        uuid.uuid4().hex,
        "running",
        0,
        0,
        None,
    )
    state.bad_attrs, state.refused, state.refused_file_ids = 0, 0, []
    ledger = node.catalog.refused

    def progress(done: int, total: int) -> None:
        state.done, state.total = done, total

    async def job() -> None:
        try:
            before = set(ledger.reasons())
            result = await rebuild(node.backend, repo, progress, node.index.adopt)
            # Every attr was read: a file refused before and not now was written (or is
            # gone); the ones refused now are recorded as any refused row is.
            await ledger.settle(
                landed=[f for f in before if f not in result.refused], refused=result.refused
            )
        except Exception as exc:
            # The class name only: a driver's message may quote SQL or a value.
            state.state, state.error = "failed", safe_reason(exc)
            log.exception("rebuild-index failed")
            return
        finally:
            node.maintenance.release("rebuild-index")
        state.bad_attrs = result.bad
        state.refused = len(result.refused)
        state.refused_file_ids = list(result.refused)[:SHOWN_REFUSED]
        state.state = "done"
        log.info(
            "rebuild-index done",
            extra={
                "fields": {
                    "rows": result.written,
                    "bad_attrs": result.bad,
                    "refused": len(result.refused),
                }
            },
        )

    node.background(job())
    return state.job_id
