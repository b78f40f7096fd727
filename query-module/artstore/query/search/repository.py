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
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from artstore.query.search.schemas import SearchRequest

# The columns the query module reads; the table belongs to migration 0001_catalog and
# the functions used below to 0003_search.
files = Table(
    "files",
    MetaData(schema="catalog"),
    Column("storage_element_id", String(64), primary_key=True),
    Column("file_id", UUID(as_uuid=False), primary_key=True),
    Column("schema_version", Integer),
    Column("original_filename", Text),
    Column("content_type", Text),
    Column("size", BigInteger),
    Column("checksum", String(80)),
    Column("uploaded_by", Text),
    Column("uploaded_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("version", Integer),
    Column("status", String(16)),
    Column("retention_policy", String(16)),
    Column("ttl_days", Integer),
    Column("expires_at", DateTime(timezone=True)),
    Column("description", Text),
    Column("tags", ARRAY(Text)),
    Column("metadata", JSONB),
    Column("quarantined_at", DateTime(timezone=True)),
)
FIELDS = [c for c in files.c if c.name != "quarantined_at"]
TS_CONFIG = "simple"  # must match catalog.search_document (0003_search)


def _tombstone(t: Any) -> ColumnElement[int]:
    return case((t.c.status == "deleted", 1), else_=0)


def _representative(f: Any) -> ColumnElement[bool]:
    """No other live row of the same file is preferred over ``f`` (see module doc).

    Descending keys swap sides in the row comparison. Served by the partial covering
    index ix_files_file_pref (index-only, one probe per candidate row).
    """
    g = files.alias("better")
    preferred = tuple_(_tombstone(g), f.c.updated_at, f.c.version, g.c.storage_element_id) < (
        tuple_(_tombstone(f), g.c.updated_at, g.c.version, f.c.storage_element_id)
    )
    return ~exists().where(g.c.file_id == f.c.file_id, g.c.quarantined_at.is_(None), preferred)


def _document(f: Any) -> ColumnElement[Any]:
    return func.catalog.search_document(
        f.c.original_filename, f.c.description, f.c.tags, f.c.metadata
    )


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(f: Any, req: SearchRequest, tsquery: Any) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [f.c.quarantined_at.is_(None), f.c.status == req.status]
    if tsquery is not None:
        where.append(_document(f).bool_op("@@")(tsquery))
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
    where.append(_representative(f))
    return where


def _order(f: Any, req: SearchRequest, score: Any) -> list[Any]:
    desc = req.sort_order == "desc"
    key = {
        "relevance": score,
        "uploaded_at": f.c.uploaded_at,
        "original_filename": f.c.original_filename,
        "size": f.c.size,
    }[req.effective_sort]
    # file_id last so that pages never overlap or skip when keys tie.
    return [key.desc(), f.c.file_id.desc()] if desc else [key.asc(), f.c.file_id.asc()]


async def search(
    conn: AsyncConnection, req: SearchRequest, count_limit: int
) -> tuple[list[dict[str, Any]], int, bool, bool]:
    """The page of representatives, the total, whether that total is exact, has_more.

    One row past the page is read so that ``has_more`` is right even when the total
    is only a lower bound.
    """
    f = files.alias("f")
    tsquery = (
        func.websearch_to_tsquery(literal_column(f"'{TS_CONFIG}'::regconfig"), req.query)
        if req.has_query
        else None
    )
    where = _conditions(f, req, tsquery)
    score = func.ts_rank(_document(f), tsquery) if tsquery is not None else literal(None)
    stmt = (
        select(*[f.c[c.name] for c in FIELDS], score.label("score"))
        .where(*where)
        .order_by(*_order(f, req, score))
        .limit(req.limit + 1)
        .offset(req.offset)
    )
    rows = [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
    has_more = len(rows) > req.limit
    rows = rows[: req.limit]
    total, exact = await _count(conn, f, where, count_limit)
    if not exact:
        # Paging past the count limit: the page itself proves this many match.
        total = max(total, req.offset + len(rows) + int(has_more))
    return rows, total, exact, has_more


async def _count(
    conn: AsyncConnection, f: Any, where: list[ColumnElement[bool]], limit: int
) -> tuple[int, bool]:
    if limit <= 0:
        stmt = select(func.count()).select_from(f).where(*where)
        return int((await conn.execute(stmt)).scalar_one()), True
    # Counting a million matches costs far more than finding a page of them: count up
    # to the limit and say "at least" past it (the way search engines report totals).
    capped = select(literal(1)).select_from(f).where(*where).limit(limit + 1).subquery()
    n = int((await conn.execute(select(func.count()).select_from(capped))).scalar_one())
    return (limit, False) if n > limit else (n, True)


async def copies_of(conn: AsyncConnection, file_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every live (not quarantined) copy of these files, the representative first."""
    if not file_ids:
        return []
    stmt = (
        select(*FIELDS)
        .where(files.c.file_id.in_(list(file_ids)), files.c.quarantined_at.is_(None))
        .order_by(
            files.c.file_id,
            _tombstone(files),
            files.c.updated_at.desc(),
            files.c.version.desc(),
            files.c.storage_element_id,
        )
    )
    return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


async def ping(conn: AsyncConnection) -> None:
    await conn.execute(select(literal(1)))


async def set_timeout(conn: AsyncConnection, seconds: float) -> None:
    # SET LOCAL: bound to this transaction, so a pooled connection keeps no trace of it.
    await conn.execute(text(f"SET LOCAL statement_timeout = {int(seconds * 1000)}"))
