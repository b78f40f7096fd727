"""All SQL of the storage element's catalog rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ARRAY, and_, any_, case, cast, delete, exists, func, select, text
from sqlalchemy import update as update_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from artstore.common.db import read_connection
from artstore.storage_element.attr.model import Attr, PreviewRef
from artstore.storage_element.catalog.errors import is_data_error, safe_reason
from artstore.storage_element.catalog.models import ATTR_COLUMNS, ATTR_SELECT, files

if TYPE_CHECKING:
    from artstore.storage_element.catalog.refused import RefusedFiles


def attr_to_row(storage_element_id: str, attr: Attr) -> dict[str, Any]:
    row: dict[str, Any] = {c: getattr(attr, c) for c in ATTR_COLUMNS if c != "previews"}
    row["previews"] = attr.preview_sizes()
    row["storage_element_id"] = storage_element_id
    return row


def row_to_attr(row: Any) -> Attr:
    """An attr for answering metadata from a row. The row keeps only the preview sizes,
    so its preview entries are placeholders (no length, no digest): such an attr
    answers a metadata read and is never written nor used to serve a preview."""
    data = {c: row._mapping[c] for c in ATTR_COLUMNS}
    data["file_id"] = str(data["file_id"])
    sizes = data.pop("previews", None) or []
    data["previews"] = [
        PreviewRef(size=s, format="webp", bytes=0, sha256="0" * 64) for s in sorted(sizes)
    ] or None
    return Attr.model_validate(data)


def _guarded_upsert() -> Any:
    """One statement with bound parameters, built once: SQLAlchemy caches its compiled
    form, where a statement with the values inlined was compiled again on every write."""
    stmt = insert(files)
    update: dict[str, Any] = {c: stmt.excluded[c] for c in ATTR_COLUMNS if c != "file_id"}
    update["synced_at"] = func.now()
    # A copy at another path is a new copy of the file (a repair or restore after the
    # old one was quarantined): its row is no longer quarantined. The same path keeps
    # the mark (an owed update of the copy that was quarantined since), unless its attr
    # was written after the mark: a new copy that got the old name (same second, same
    # uploader) is no damage record either.
    same_copy = and_(
        files.c.storage_path == stmt.excluded.storage_path,
        stmt.excluded.updated_at <= files.c.quarantined_at,
    )
    update["quarantined_at"] = case((same_copy, files.c.quarantined_at), else_=None)
    update["quarantine_reason"] = case((same_copy, files.c.quarantine_reason), else_=None)
    return stmt.on_conflict_do_update(
        index_elements=[files.c.storage_element_id, files.c.file_id],
        set_=update,
        where=files.c.version <= stmt.excluded.version,
    )


_GUARDED_UPSERT = _guarded_upsert()


class CatalogRepository:
    def __init__(self, engine: AsyncEngine, storage_element_id: str) -> None:
        self.engine = engine
        self.se_id = storage_element_id
        # Where refused rows are recorded (set by CatalogSync; None: not recorded).
        self.refused: RefusedFiles | None = None

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def upsert(self, attrs: Sequence[Attr]) -> None:
        """Insert or update rows; an older attr version never overwrites a newer row."""
        if not attrs:
            return
        # One statement is its own transaction: autocommit saves BEGIN and COMMIT.
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(_GUARDED_UPSERT, [attr_to_row(self.se_id, a) for a in attrs])

    async def delete(self, file_id: str) -> None:
        stmt = delete(files).where(
            files.c.storage_element_id == self.se_id, files.c.file_id == file_id
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def fingerprints_of(self, file_ids: Sequence[str]) -> dict[str, tuple[str, bool]]:
        """file_id -> (meta_checksum, quarantined) of this SE's rows of ``file_ids``
        (reconcile asks one chunk of the walk at a time)."""
        if not file_ids:
            return {}
        stmt = select(files.c.file_id, files.c.meta_checksum, files.c.quarantined_at).where(
            files.c.storage_element_id == self.se_id,
            files.c.file_id == any_(cast(list(file_ids), ARRAY(files.c.file_id.type))),
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {str(r.file_id): (r.meta_checksum, r.quarantined_at is not None) for r in rows}

    async def rows_after(self, after: str | None, limit: int) -> list[tuple[str, str, bool]]:
        """(file_id, storage_path, quarantined) of this SE's rows, by file id, the
        ``limit`` first after ``after`` (keyset paging on the primary key)."""
        where = [files.c.storage_element_id == self.se_id]
        if after is not None:
            where.append(files.c.file_id > after)
        stmt = (
            select(files.c.file_id, files.c.storage_path, files.c.quarantined_at)
            .where(*where)
            .order_by(files.c.file_id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(str(r.file_id), r.storage_path, r.quarantined_at is not None) for r in rows]

    async def force_upsert(self, attrs: Sequence[Attr]) -> dict[str, str]:
        """Write rows exactly as the attrs say, whatever version the rows hold (reconcile).

        One statement; when PostgreSQL refuses it for the data of a row, row by row, so
        one bad row does not keep the others out. Returns the rows refused (file id ->
        reason code, see ``errors.safe_reason``), and records the outcome in
        ``self.refused`` when set. An outage raises as before."""
        if not attrs:
            return {}
        refused: dict[str, str] = {}
        try:
            await self._force_upsert(attrs)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            if len(attrs) == 1:
                refused[attrs[0].file_id] = safe_reason(exc)
            else:
                for attr in attrs:
                    try:
                        await self._force_upsert([attr])
                    except Exception as one:
                        if not is_data_error(one):
                            raise
                        refused[attr.file_id] = safe_reason(one)
        if self.refused is not None:
            landed = [a.file_id for a in attrs if a.file_id not in refused]
            await self.refused.settle(landed=landed, refused=refused)
        return refused

    async def _force_upsert(self, attrs: Sequence[Attr]) -> None:
        stmt = insert(files).values([attr_to_row(self.se_id, a) for a in attrs])
        update: dict[str, Any] = {c: stmt.excluded[c] for c in ATTR_COLUMNS}
        update["synced_at"] = func.now()
        update["quarantined_at"] = None
        update["quarantine_reason"] = None
        async with self.engine.begin() as conn:
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[files.c.storage_element_id, files.c.file_id], set_=update
                )
            )

    async def mark_quarantined(self, storage_path: str, reason: str) -> str | None:
        """Mark the row of the copy at ``storage_path``; return its file id if there is one.

        By path, not id: a damaged attr may no longer say which file it was.
        """
        stmt = (
            update_(files)
            .where(files.c.storage_element_id == self.se_id, files.c.storage_path == storage_path)
            .values(quarantined_at=func.now(), quarantine_reason=reason)
            .returning(files.c.file_id)
        )
        async with self.engine.begin() as conn:
            file_id = (await conn.execute(stmt)).scalar()
        return str(file_id) if file_id is not None else None

    async def delete_quarantined(self, storage_path: str) -> str | None:
        """Drop the row still marked quarantined for the copy at ``storage_path`` (a
        purge); a row that is healthy again (restored) stays. Its file id, if any."""
        stmt = (
            delete(files)
            .where(
                files.c.storage_element_id == self.se_id,
                files.c.storage_path == storage_path,
                files.c.quarantined_at.is_not(None),
            )
            .returning(files.c.file_id)
        )
        async with self.engine.begin() as conn:
            file_id = (await conn.execute(stmt)).scalar()
        return str(file_id) if file_id is not None else None

    async def get(self, file_id: str) -> Attr | None:
        stmt = select(*ATTR_SELECT).where(
            files.c.storage_element_id == self.se_id,
            files.c.file_id == file_id,
            files.c.quarantined_at.is_(None),
        )
        async with read_connection(self.engine) as conn:  # one round trip (issue 19)
            row = (await conn.execute(stmt)).first()
        return row_to_attr(row) if row is not None else None

    async def file_id_taken(self, file_id: str) -> bool:
        """Whether any SE has a row of ``file_id``, whatever its status (a tombstone or
        a quarantined copy too): the id is someone's (files/access.py)."""
        stmt = select(exists().where(files.c.file_id == file_id))
        async with self.engine.connect() as conn:
            return bool((await conn.execute(stmt)).scalar())

    async def list(
        self, statuses: Sequence[str], limit: int, offset: int
    ) -> tuple[list[Attr], int]:
        where = (
            files.c.storage_element_id == self.se_id,
            files.c.status.in_(statuses),
            files.c.quarantined_at.is_(None),  # a marked row records damage, not a file
        )
        page = (
            select(*ATTR_SELECT)
            .where(*where)
            .order_by(files.c.uploaded_at.desc(), files.c.file_id.desc())
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(files).where(*where)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(page)).all()
            total = (await conn.execute(count)).scalar_one()
        return [row_to_attr(r) for r in rows], int(total)
