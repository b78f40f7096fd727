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

A row PostgreSQL refuses for its data (issue 11: a NUL, a value too long for its index)
does not fail the rebuild: each chunk is written under a savepoint, and a chunk refused
for its data is halved until the refused rows are alone; those are reported (file id ->
reason code) and the others written. A refused file's old row, if it had one, is left
as it was (struck off the noted ids): the rebuild cannot write what its attr says.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Sequence
from typing import TYPE_CHECKING, Any

from artstore.storage_element.attr.row import FILE_ID, ROW_COLUMNS
from artstore.storage_element.catalog.errors import is_data_error, safe_reason

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
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KEEP_REFUSED = "DELETE FROM rebuild_old WHERE file_id = ANY($1::uuid[])"
_DELETE_GONE = (
    "DELETE FROM catalog.files f USING rebuild_old o "
    "WHERE f.storage_element_id = $1 AND f.file_id = o.file_id"
)


async def replace_rows(
    conn: asyncpg.Connection,
    storage_element_id: str,
    chunks: AsyncIterable[Sequence[tuple[Any, ...]]],
    refused: dict[str, str] | None = None,
) -> int:
    """This SE's rows become the rows of ``chunks`` (``ROW_COLUMNS`` order, ``metadata``
    as JSON text), in one transaction, bar the rows refused for their data: those are
    added to ``refused`` (file id -> reason code), where the caller may have put the
    files it refused itself (both keep their old rows). Returns how many rows were
    written."""
    refused = refused if refused is not None else {}
    written = 0
    async with conn.transaction():
        await conn.execute(_CREATE_NEW)
        await conn.execute(_NOTE_OLD[0])
        noted = await conn.execute(_NOTE_OLD[1], storage_element_id)
        had_rows = noted != "INSERT 0 0"
        upsert = _UPSERT_NOTED if had_rows else _UPSERT_NEW_SE

        async def write(rows: Sequence[tuple[Any, ...]]) -> None:
            nonlocal written
            try:
                async with conn.transaction():  # a savepoint: a refused chunk leaves nothing
                    await conn.copy_records_to_table(_NEW, records=rows, columns=ROW_COLUMNS)
                    await conn.execute(upsert, storage_element_id)
                    if had_rows:  # with nothing noted, nothing can be gone
                        await conn.execute(_STRIKE)
                    await conn.execute(f"TRUNCATE {_NEW}")
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                if len(rows) == 1:
                    refused[str(rows[0][FILE_ID])] = safe_reason(exc)
                    return
                half = len(rows) // 2
                await write(rows[:half])
                await write(rows[half:])
                return
            written += len(rows)

        async for rows in chunks:
            if rows:
                await write(rows)
        if had_rows:
            keep = [f for f in refused if _is_uuid(f)]  # others cannot have a row
            if keep:
                await conn.execute(_KEEP_REFUSED, keep)
            # A hash join whatever the statistics say: an SE new to them is estimated at
            # one row, and a nested loop over its real rows is quadratic (minutes).
            await conn.execute("SET LOCAL enable_nestloop = off")
            await conn.execute(_DELETE_GONE, storage_element_id)
    return written


def _is_uuid(text: str) -> bool:
    """A UUID in the form PostgreSQL certainly parses (any casting failure here would
    fail the whole rebuild)."""
    return _UUID.fullmatch(text) is not None


async def replace_rows_via(
    engine: AsyncEngine,
    storage_element_id: str,
    chunks: AsyncIterable[Sequence[tuple[Any, ...]]],
    refused: dict[str, str] | None = None,
) -> int:
    """``replace_rows`` on a connection of ``engine`` (the online job)."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        # The driver's own connection (COPY is asyncpg's). The transaction is opened and
        # closed there; SQLAlchemy never begins one on this connection.
        driver: asyncpg.Connection = raw.driver_connection
        return await replace_rows(driver, storage_element_id, chunks, refused)
