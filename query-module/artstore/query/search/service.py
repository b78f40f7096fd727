"""Search: one consistent snapshot for the page, its count and the copies of its files."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.exc import DBAPIError

from artstore.common.dberrors import is_connection_error, safe_reason
from artstore.common.errors import ServiceUnavailable
from artstore.query.search import repository as repo
from artstore.query.search.schemas import SearchRequest, item_of_catalog, page_json
from artstore.query.state import QueryState


def _group(copies: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for c in copies:
        out.setdefault(str(c["file_id"]), []).append(c)
    return out


async def search(state: QueryState, req: SearchRequest) -> bytes:
    """The page as ``SearchPage`` JSON (encoded here, once: see ``schemas.item_of_catalog``)."""
    req.checked()
    started = time.perf_counter()
    try:
        async with state.engine.connect() as conn:
            # Repeatable read: page, total and copies all describe the same moment.
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                await repo.set_timeout(conn, state.settings.search_timeout)
                rows, total, exact, has_more = await repo.search(
                    conn,
                    req,
                    state.settings.search_count_limit,
                    state.settings.search_rank_window,
                )
                if all("copies" in r for r in rows):  # read with the page (one statement)
                    grouped = {str(r["file_id"]): r.pop("copies") or [] for r in rows}
                else:
                    ids = [str(r["file_id"]) for r in rows]
                    grouped = _group(await repo.copies_of(conn, ids))
    except (DBAPIError, OSError, TimeoutError) as exc:
        # A value the catalog refuses is the client's 400 (errors.py); only a catalog
        # that cannot be reached (or timed out) is 503, which clients retry.
        if not is_connection_error(exc):
            raise
        raise ServiceUnavailable(
            "the catalog cannot answer now", details={"reason": safe_reason(exc)}
        ) from exc
    finally:
        state.metrics.searches.observe(time.perf_counter() - started)
    scored = req.has_query
    items = [
        item_of_catalog(
            r, grouped.get(str(r["file_id"]), []), float(r["score"] or 0.0) if scored else None
        )
        for r in rows
    ]
    return page_json(items, total, req.limit, req.offset, has_more, exact)
