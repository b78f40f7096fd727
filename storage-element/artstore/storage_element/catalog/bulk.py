"""rebuild-index's write: replace one SE's catalog rows by COPY (issue 7).

Plain asyncpg on purpose: the online job hands in the driver connection under its
SQLAlchemy engine, the offline command a connection of its own (without importing
SQLAlchemy at all). Everything happens in one transaction on that connection:

1. lock the SE's rows as they are now and note their ids (``rebuild_old``). Locked, they
   stay as they are until the commit (a write of the SE to one of them waits for it), as
   when the rebuild deleted them all first;
2. per chunk of rows as it arrives: COPY into a temp table, then one
   ``INSERT … SELECT … ON CONFLICT DO UPDATE`` into ``catalog.files``, so PostgreSQL
   updates its indexes for one chunk while the caller reads and decodes the next. A
   noted row takes its attr's values whatever its ``version`` (the attr is the truth);
   a row that appeared since step 1 (a write that landed meanwhile) only when it is not
   newer (``version <= excluded.version``). A row already equal to its attr is left as
   it is, not rewritten (its ``synced_at`` stays); a rewritten row loses any quarantine
   mark, as a re-inserted one did;
3. delete the noted rows whose file has no attr any more. Rows that appeared after step
   1 are never deleted: the SE wrote them while the rebuild ran.

So the SE's rows become exactly the attrs found, bar writes newer than the walk.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from typing import TYPE_CHECKING, Any

from artstore.storage_element.attr.row import ROW_COLUMNS

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncEngine

_COLS = ", ".join(ROW_COLUMNS)
_NEW = "rebuild_rows"  # temp tables: private to the connection, dropped at commit
_CHANGED = " OR ".join(f"f.{c} IS DISTINCT FROM excluded.{c}" for c in ROW_COLUMNS) + (
    " OR f.quarantined_at IS NOT NULL"
)
_SET = ", ".join(f"{c} = excluded.{c}" for c in ROW_COLUMNS if c != "file_id")

_CREATE_NEW = (
    f"CREATE TEMP TABLE {_NEW} ON COMMIT DROP AS "  # noqa: S608  (column names only)
    f"SELECT {_COLS} FROM catalog.files WITH NO DATA"
)
_NOTE_OLD = (
    "CREATE TEMP TABLE rebuild_old (file_id uuid PRIMARY KEY) ON COMMIT DROP",
    "INSERT INTO rebuild_old "
    "SELECT file_id FROM catalog.files WHERE storage_element_id = $1 FOR UPDATE",
)
# One row per file of a chunk (the highest version wins; SQL cannot upsert a row twice).
_UPSERT = f"""
INSERT INTO catalog.files AS f (storage_element_id, {_COLS})
SELECT DISTINCT ON (file_id) $1::text, {_COLS} FROM {_NEW} ORDER BY file_id, version DESC
ON CONFLICT (storage_element_id, file_id) DO UPDATE
SET {_SET}, synced_at = now(), quarantined_at = NULL, quarantine_reason = NULL
WHERE ({{may_replace}}) AND ({_CHANGED})
"""  # noqa: S608  (only column names of this module are interpolated)
_NEWER_ONLY = "f.version <= excluded.version"
_NOTED = "EXISTS (SELECT 1 FROM rebuild_old o WHERE o.file_id = f.file_id)"
_UPSERT_NEW_SE = _UPSERT.format(may_replace=_NEWER_ONLY)
_UPSERT_NOTED = _UPSERT.format(may_replace=f"{_NEWER_ONLY} OR {_NOTED}")
# A noted id is struck off once its attr was written: what remains at the end is gone
# (and a second attr of the same file id, should there be one, is version-guarded).
_STRIKE = f"DELETE FROM rebuild_old o USING {_NEW} n WHERE o.file_id = n.file_id"  # noqa: S608
_DELETE_GONE = (
    "DELETE FROM catalog.files f USING rebuild_old o "
    "WHERE f.storage_element_id = $1 AND f.file_id = o.file_id"
)


async def replace_rows(
    conn: asyncpg.Connection,
    storage_element_id: str,
    chunks: AsyncIterable[Sequence[tuple[Any, ...]]],
) -> int:
    """This SE's rows become the rows of ``chunks`` (``ROW_COLUMNS`` order, ``metadata``
    as JSON text), in one transaction. Returns how many rows were given."""
    given = 0
    async with conn.transaction():
        await conn.execute(_CREATE_NEW)
        await conn.execute(_NOTE_OLD[0])
        noted = await conn.execute(_NOTE_OLD[1], storage_element_id)
        had_rows = noted != "INSERT 0 0"
        upsert = _UPSERT_NOTED if had_rows else _UPSERT_NEW_SE
        async for rows in chunks:
            if not rows:
                continue
            await conn.copy_records_to_table(_NEW, records=rows, columns=ROW_COLUMNS)
            await conn.execute(upsert, storage_element_id)
            if had_rows:  # with nothing noted, nothing can be gone
                await conn.execute(_STRIKE)
            await conn.execute(f"TRUNCATE {_NEW}")
            given += len(rows)
        if had_rows:
            # A hash join whatever the statistics say: an SE new to them is estimated at
            # one row, and a nested loop over its real rows is quadratic (minutes).
            await conn.execute("SET LOCAL enable_nestloop = off")
            await conn.execute(_DELETE_GONE, storage_element_id)
    return given


async def replace_rows_via(
    engine: AsyncEngine,
    storage_element_id: str,
    chunks: AsyncIterable[Sequence[tuple[Any, ...]]],
) -> int:
    """``replace_rows`` on a connection of ``engine`` (the online job)."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        # The driver's own connection (COPY is asyncpg's). The transaction is opened and
        # closed there; SQLAlchemy never begins one on this connection.
        driver: asyncpg.Connection = raw.driver_connection
        return await replace_rows(driver, storage_element_id, chunks)
