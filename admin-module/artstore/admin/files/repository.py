"""All SQL of the files view: reads of ``catalog.files`` (written only by the SEs)."""

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
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

# The columns the admin reads; the table itself belongs to migration 0001_catalog.
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
)

# The copy that speaks for a file: a live copy before a tombstone, then the newest.
_PREFERENCE = (
    files.c.file_id,
    case((files.c.status == "deleted", 1), else_=0),
    files.c.updated_at.desc(),
    files.c.version.desc(),
    files.c.storage_element_id,
)


def _representatives() -> Any:
    return select(files).distinct(files.c.file_id).order_by(*_PREFERENCE).subquery("rep")


async def page(
    session: AsyncSession, filters: dict[str, Any], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    rep = _representatives()
    where: list[Any] = [rep.c.status.in_(filters["statuses"])]
    for name in ("retention_policy", "uploaded_by"):
        if filters.get(name) is not None:
            where.append(rep.c[name] == filters[name])
    if filters.get("storage_element_id") is not None:
        copy = files.alias("copy")
        where.append(
            exists().where(
                copy.c.file_id == rep.c.file_id,
                copy.c.storage_element_id == filters["storage_element_id"],
            )
        )
    stmt = (
        select(rep)
        .where(*where)
        .order_by(rep.c.uploaded_at.desc(), rep.c.file_id.desc())
        .limit(limit)
        .offset(offset)
    )
    count = select(func.count()).select_from(rep).where(*where)
    rows = (await session.execute(stmt)).mappings().all()
    total = (await session.execute(count)).scalar_one()
    return [dict(r) for r in rows], int(total)


async def copies(session: AsyncSession, file_ids: Sequence[str]) -> list[dict[str, Any]]:
    if not file_ids:
        return []
    stmt = select(files).where(files.c.file_id.in_(list(file_ids))).order_by(*_PREFERENCE)
    return [dict(r) for r in (await session.execute(stmt)).mappings().all()]
