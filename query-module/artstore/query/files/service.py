"""File metadata (cached) and the copies a download may use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError, OperationalError

from artstore.common.errors import FileGone, NotFound, ServiceUnavailable
from artstore.query.search import repository as repo
from artstore.query.search.schemas import FileItem
from artstore.query.state import QueryState


async def _copies(state: QueryState, file_id: str) -> list[dict[str, Any]]:
    try:
        async with state.engine.connect() as conn:
            copies = await repo.copies_of(conn, [file_id])
    except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
        raise ServiceUnavailable(
            "the catalog cannot answer now", details={"reason": exc.__class__.__name__}
        ) from exc
    if not copies:
        raise NotFound(f"file {file_id} not found", details={"file_id": file_id})
    return copies


async def metadata(state: QueryState, file_id: str) -> str:
    """The JSON of FileMetadata of the copy that speaks for the file plus its copies (any
    status), sent as it is: a cache hit costs no parse and no serialisation (the cache
    key names the answer's shape, cache/store.py)."""
    cached = await state.cache.get(file_id)
    if cached is not None:
        state.metrics.cache.labels("hit").inc()
        return cached
    state.metrics.cache.labels("miss").inc()
    copies = await _copies(state, file_id)
    answer = FileItem.of(copies[0], copies).model_dump_json()
    await state.cache.put(file_id, answer)
    return answer


def _readable(copy: dict[str, Any], now: datetime) -> bool:
    expires = copy.get("expires_at")
    return bool(copy["status"] == "active" and (expires is None or expires > now))


async def downloadable_copies(
    state: QueryState, file_id: str, recent: bool = False
) -> list[dict[str, Any]]:
    """Copies that may serve the bytes, from the catalog (never the metadata cache, so a
    delete is honoured at once; one round trip, see files/catalog.py; with ``recent``, a
    download's, possibly as read for another download up to a second ago, which the SE
    then corrects); 404 unknown, 410 when none is active."""
    try:
        copies = await state.copy_reader.copies(file_id, recent)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        raise ServiceUnavailable(
            "the catalog cannot answer now", details={"reason": exc.__class__.__name__}
        ) from exc
    if not copies:
        raise NotFound(f"file {file_id} not found", details={"file_id": file_id})
    now = datetime.now(UTC)
    live = [c for c in copies if _readable(c, now)]
    if not live:
        state.copy_reader.forget(file_id)
        await state.cache.drop(file_id)
        status = "deleted" if copies[0]["status"] == "deleted" else "expired"
        raise FileGone(
            f"file {file_id} is {status}", details={"file_id": file_id, "status": status}
        )
    return live
