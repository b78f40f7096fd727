"""Every SQL statement of the query module: reads of ``catalog.files`` (written by SEs).

One row is one copy. A file is represented by one copy, chosen the way the admin's
files view chooses it: a live copy before a tombstone, then the newest (``updated_at``,
``version``), then the storage id for a stable tie-break. Quarantined rows are not
files and are never read. A search filters representatives only, so a file is found
once, by what its newest copy says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    case,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from artstore.contracts.catalog import (
    FILE_COLUMNS,
    files,
    not_quarantined,
    preference_order,
    speaks_for_file,
    ts_config,
)
from artstore.query.search.schemas import SearchRequest

# The table and the representative order are declared once in artstore.contracts.catalog
# (the table by migration 0001, the functions used below by 0003_search).
FIELDS = list(FILE_COLUMNS)
DEFER_OFFSET = 10  # pages at offset >= this many pages are read by a deferred join

# The aliases every statement uses, made once: an alias builds its column collection
# (25 proxies) on first use, which per request cost more than running a one-row search.
# They are immutable; the statements built from them share SQLAlchemy's compiled cache.
# "cp" (not "c"): the copies subquery runs inside statements over a subquery named "c".
_F, _G, _R, _C = (files.alias(name) for name in ("f", "g", "r", "cp"))


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(f: Any, req: SearchRequest, tsquery: Any) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [f.c.quarantined_at.is_(None), f.c.status == req.status]
    if tsquery is not None:
        where.append(f.c.search_vector.bool_op("@@")(tsquery))
    if req.filename is not None:
        if req.match == "exact":
            where.append(f.c.original_filename == req.filename)
        else:  # pg_trgm GIN serves ILIKE '%...%' (ix_files_filename_trgm)
            pattern = f"%{_like_escape(req.filename)}%"
            where.append(f.c.original_filename.ilike(pattern, escape="\\"))
    if req.extension is not None:
        where.append(func.catalog.file_extension(f.c.original_filename) == req.extension)
    if req.content_type is not None:
        where.append(f.c.content_type == req.content_type)
    if req.tags:
        where.append(f.c.tags.contains(sorted(set(req.tags))))
    if req.metadata:
        where.append(f.c.metadata.contains(req.metadata))
    if req.uploaded_by is not None:
        where.append(f.c.uploaded_by == req.uploaded_by)
    if req.retention_policy is not None:
        where.append(f.c.retention_policy == req.retention_policy)
    if req.min_size is not None:
        where.append(f.c.size >= req.min_size)
    if req.max_size is not None:
        where.append(f.c.size <= req.max_size)
    if req.after is not None:
        where.append(f.c.uploaded_at >= req.after)
    if req.before is not None:
        where.append(f.c.uploaded_at <= req.before)
    where.append(speaks_for_file(f))
    return where


def _order(c: Any, req: SearchRequest, score: Any) -> list[Any]:
    desc = req.sort_order == "desc"
    sort = req.effective_sort  # relevance, or the name of a column
    key = score if sort == "relevance" else c[sort]
    # file_id last so that pages never overlap or skip when keys tie.
    return [key.desc(), c.file_id.desc()] if desc else [key.asc(), c.file_id.asc()]


def _tsquery(req: SearchRequest) -> Any:
    if not req.has_query:
        return None
    return func.websearch_to_tsquery(ts_config(), req.query)


def _matches(req: SearchRequest, tsquery: Any, newest: int | None = None) -> Select[Any]:
    """The matching representatives (every field and the vector); with ``newest``, only
    that many, newest first."""
    f = _F
    stmt = select(*[f.c[c.name] for c in FIELDS], f.c.search_vector)
    stmt = stmt.where(*_conditions(f, req, tsquery))
    if newest is None:
        return stmt
    return stmt.order_by(f.c.uploaded_at.desc(), f.c.file_id.desc()).limit(newest)


def _ordered(
    c: Any, req: SearchRequest, tsquery: Any, window: int, with_total: bool = False
) -> Select[Any]:
    """The page (one row past it, for ``has_more``) of the matches in ``c``, sorted.

    By relevance, only the ``window`` newest matches of ``c`` are ranked (0: all of
    them): those come first, best first, then the older matches newest first. When no
    more than ``window`` files match, that is the exact ranking of every match.
    ``with_total`` adds ``n``, the number of rows of ``c``.
    """
    total = [func.count().over().label("n")] if with_total else []
    c = c.c
    if req.effective_sort != "relevance" or window <= 0:
        score = func.ts_rank(c.search_vector, tsquery) if tsquery is not None else literal(None)
        return (
            select(*[c[x.name] for x in FIELDS], score.label("score"), *total, *_copies(c, req))
            .order_by(*_order(c, req, score))
            .limit(req.limit + 1)
            .offset(req.offset)
        )
    pos = func.row_number().over(order_by=[c.uploaded_at.desc(), c.file_id.desc()])
    numbered = select(*c, pos.label("pos")).subquery("numbered")
    n = numbered.c
    score = func.ts_rank(n.search_vector, tsquery)
    ranked = n.pos <= window
    key, tie = case((ranked, score)), case((ranked, n.file_id))
    desc = req.sort_order == "desc"
    return (
        select(*[n[x.name] for x in FIELDS], score.label("score"), *total, *_copies(n, req))
        .order_by(
            (~ranked).asc(),
            key.desc().nulls_last() if desc else key.asc().nulls_last(),
            tie.desc() if desc else tie.asc(),
            n.pos.asc(),
        )
        .limit(req.limit + 1)
        .offset(req.offset)
    )


def page_statement(req: SearchRequest, rank_window: int, count_limit: int = 0) -> Select[Any]:
    """The page when many files match: PostgreSQL may walk an index in the sort order
    and stop after the page.

    By relevance (with a window) the candidates are the newest matches in index order:
    the ranking window, as many older ones as this page reaches, and one more than the
    count limit; ``n`` says how many there were, so this one statement also answers
    the total (exact when fewer than the candidates asked for).
    """
    tsquery = _tsquery(req)
    if _windowed(req, rank_window):
        n = max(rank_window, req.offset + req.limit, count_limit) + 1
        c = _matches(req, tsquery, n).subquery("c")
        return _ordered(c, req, tsquery, rank_window, with_total=count_limit > 0)
    if req.effective_sort == "relevance" or req.offset < DEFER_OFFSET * req.limit:
        return _ordered(_matches(req, tsquery).subquery("c"), req, tsquery, rank_window)
    # A deep page, by a deferred join: the walk (and the rows the offset skips) reads only
    # the key, the sort key and what the filters need (for a listing all of it is in
    # ix_files_listing: index-only), and only the page's rows are then read whole
    # (offset 5,000: ~40% less time). A shallow page would only pay the extra look-ups.
    f = _F
    k = (
        select(f.c.storage_element_id, f.c.file_id, f.c[req.effective_sort])
        .where(*_conditions(f, req, tsquery))
        .order_by(*_order(f.c, req, None))
        .limit(req.limit + 1)
        .offset(req.offset)
        .subquery("k")
    )
    r = _R
    score = func.ts_rank(r.c.search_vector, tsquery) if tsquery is not None else literal(None)
    on = (r.c.storage_element_id == k.c.storage_element_id) & (r.c.file_id == k.c.file_id)
    return (
        select(*[r.c[x.name] for x in FIELDS], score.label("score"), _copies_of(r.c.file_id))
        .join_from(k, r, on)
        .order_by(*_order(k.c, req, None))
    )


def _windowed(req: SearchRequest, rank_window: int) -> bool:
    return req.effective_sort == "relevance" and rank_window > 0


def small_page_statement(req: SearchRequest, count_limit: int, rank_window: int) -> Select[Any]:
    """The page and ``n`` in one statement, whether few or many files match.

    First up to ``count_limit + 1`` matches are fetched in any order (the cheapest plan,
    e.g. a bitmap of the GIN indexes), only their keys and sort key (``m``); ``n`` is how
    many. When ``n <= count_limit`` that is every match: the page is sorted from ``m`` in
    memory (``narrow``), exact, and no index walk can get lost among rows that do not
    match. Past the limit, the page is read by walking an index in the sort order
    instead (``broad``, as :func:`page_statement` does):
    each branch sits under a one-time filter on ``n``, so PostgreSQL runs only one of
    them. Either gives keys; the page's rows are then read whole by primary key. One
    statement, one round trip and one plan instead of two (a broad search used to fetch
    its matches whole, then ask again for its page)."""
    tsquery = _tsquery(req)
    f = _F
    sort = req.effective_sort
    keep = [f.c.storage_element_id, f.c.file_id]
    if sort != "relevance":
        keep.append(f.c[sort])
    if tsquery is not None:
        keep.append(f.c.search_vector)
    walk = walks_in_order(req, count_limit)
    first = select(*keep).where(*_conditions(f, req, tsquery))
    if walk:
        first = first.order_by(*_order(f.c, req, None))
    m = first.limit(count_limit + 1).cte("m").prefix_with("MATERIALIZED")
    n = select(func.count()).select_from(m).scalar_subquery()
    few = n <= count_limit
    m_score = func.ts_rank(m.c.search_vector, tsquery) if tsquery is not None else None
    narrow = (
        select(m.c.storage_element_id, m.c.file_id)
        .order_by(*_order(m.c, req, m_score))
        .limit(req.limit + 1)
        .offset(req.offset)
    )
    if walk:
        # m holds the first count_limit + 1 matches in the page's own order, so it holds
        # this page (and the row past it) whether or not more match: no second walk.
        k = narrow.subquery("k")
    else:
        g = _G
        g_score = func.ts_rank(g.c.search_vector, tsquery) if tsquery is not None else None
        broad = (
            select(g.c.storage_element_id, g.c.file_id)
            .where(*_conditions(g, req, tsquery), ~few)
            .order_by(*_order(g.c, req, g_score))
            .limit(req.limit + 1)
            .offset(req.offset)
        )
        narrow = narrow.where(few)
        both = narrow.subquery("narrow").select().union_all(broad.subquery("broad").select())
        k = both.subquery("k")
    r = _R
    score = func.ts_rank(r.c.search_vector, tsquery) if tsquery is not None else literal(None)
    on = (r.c.storage_element_id == k.c.storage_element_id) & (r.c.file_id == k.c.file_id)
    return (
        select(
            *[r.c[x.name] for x in FIELDS],
            score.label("score"),
            n.label("n"),
            _copies_of(r.c.file_id),
        )
        .join_from(k, r, on)
        .order_by(*_order(r.c, req, score))
    )


def walks_in_order(req: SearchRequest, count_limit: int) -> bool:
    """Whether :func:`small_page_statement` takes its ``count_limit + 1`` matches in the
    page's order rather than in any order.

    Without full text, tags, metadata or a partial name, every filter is a btree one:
    walking an index in the sort order (for a listing, ix_files_listing: index-only)
    finds the first matches as cheaply as any other plan, often more cheaply (newest
    first through a listing, an "any order" plan read the heap in file_id order: one
    random page per match), and when the page lies within them they are the page too.
    A GIN filter is left to its bitmap: in order it would sort every match or walk past
    most rows."""
    partial = req.filename is not None and req.match != "exact"
    gin = req.has_query or bool(req.tags) or bool(req.metadata) or partial
    return not gin and req.offset + req.limit <= count_limit


def _copies(c: Any, req: SearchRequest) -> list[Any]:
    """The copies of a sorted page's rows, read by the page's statement when the page is
    near the start. PostgreSQL evaluates a costly output column after the sort, but for
    every row the offset skips too: a deep page reads its copies by a second statement
    (the service does so for rows without ``copies``)."""
    return [_copies_of(c.file_id)] if req.offset <= req.limit else []


def _copies_of(file_id: Any) -> Any:
    """Every live copy of the file in column ``file_id`` as JSON ``[{storage_element_id,
    status}]``, the representative first (as :func:`copies_of`), read by the page's own
    statement (no second statement after the page)."""
    c = _C
    one = func.json_build_object("storage_element_id", c.c.storage_element_id, "status", c.c.status)
    agg = func.json_agg(aggregate_order_by(one, *preference_order(c)))
    stmt = select(agg).where(c.c.file_id == file_id, not_quarantined(c))
    return type_coerce(stmt.scalar_subquery(), JSON).label("copies")


def count_statement(req: SearchRequest, count_limit: int) -> Select[Any]:
    """How many representatives match; at most ``count_limit + 1`` (0: no cap)."""
    f = _F
    where = _conditions(f, req, _tsquery(req))
    if count_limit <= 0:
        return select(func.count()).select_from(f).where(*where)
    # Counting a million matches costs far more than finding a page of them: count up
    # to the limit and say "at least" past it (the way search engines report totals).
    capped = select(literal(1)).select_from(f).where(*where).limit(count_limit + 1).subquery()
    return select(func.count()).select_from(capped)


async def _rows(conn: AsyncConnection, stmt: Select[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


async def _count(conn: AsyncConnection, req: SearchRequest, count_limit: int) -> int:
    """The capped count, for a page that came back empty (none match, or paged past)."""
    if req.offset == 0:
        return 0
    return int((await conn.execute(count_statement(req, count_limit))).scalar_one())


async def search(
    conn: AsyncConnection, req: SearchRequest, count_limit: int, rank_window: int = 0
) -> tuple[list[dict[str, Any]], int, bool, bool]:
    """The page of representatives, the total, whether that total is exact, has_more.

    One row past the page is read so that ``has_more`` is right even when the total
    is only a lower bound. With a count limit, one statement fetches up to that many
    matches and answers from them when they are all, or else (a broad search) reads the
    page by walking an index in order (:func:`small_page_statement`).
    By relevance, the windowed page statement answers both; a deep page (offset past
    the limit) is read first, as its rows alone prove the total past the limit.
    """
    if count_limit <= 0:
        rows = await _rows(conn, page_statement(req, rank_window))
        n = int((await conn.execute(count_statement(req, 0))).scalar_one())
    elif _windowed(req, rank_window):
        rows = await _rows(conn, page_statement(req, rank_window, count_limit))
        n = int(rows[0]["n"]) if rows else await _count(conn, req, count_limit)
    elif req.offset >= count_limit:
        # A deep page: any row it has proves more matches than the limit.
        rows = await _rows(conn, page_statement(req, rank_window))
        n = count_limit + 1 if rows else await _count(conn, req, count_limit)
    else:
        rows = await _rows(conn, small_page_statement(req, count_limit, rank_window))
        n = int(rows[0]["n"]) if rows else await _count(conn, req, count_limit)
    for r in rows:
        r.pop("n", None)  # "copies" stays when the statement read them
    has_more = len(rows) > req.limit
    rows = rows[: req.limit]
    if count_limit <= 0 or n <= count_limit:
        return rows, n, True, has_more
    # Past the count limit: a page proves that its rows and those before it match (an
    # empty page past the end proves nothing about its offset).
    proved = req.offset + len(rows) + int(has_more) if rows else 0
    return rows, max(count_limit, proved), False, has_more


async def copies_of(conn: AsyncConnection, file_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every live (not quarantined) copy of these files, the representative first."""
    if not file_ids:
        return []
    stmt = (
        select(*FIELDS)
        .where(files.c.file_id.in_(list(file_ids)), files.c.quarantined_at.is_(None))
        .order_by(files.c.file_id, *preference_order(files))
    )
    return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


async def ping(conn: AsyncConnection) -> None:
    await conn.execute(select(literal(1)))


async def set_timeout(conn: AsyncConnection, seconds: float) -> None:
    """The settings of one search transaction (``is_local``: gone at its end, so a pooled
    connection keeps no trace of them), in one round trip."""
    settings = {
        "statement_timeout": str(int(seconds * 1000)),
        # Every search statement is bounded (a page, a capped count, a ranking window):
        # JIT compilation (tens of ms) and parallel workers cost more than they save.
        "jit": "off",
        "max_parallel_workers_per_gather": "0",
        # Plans depend on the values (a rare word wants the GIN index, a common one the
        # newest-first walk): never a generic plan of a cached prepared statement.
        "plan_cache_mode": "force_custom_plan",
    }
    await conn.execute(select(*[func.set_config(k, v, True) for k, v in settings.items()]))
