"""Migration 0004_search_vector: the stored full-text vector and the search indexes, up
and down over a catalog that already has rows (as a deployment has)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from alembic import command

from artstore.cli.devdb import create_database, drop_database, with_database
from artstore.cli.migrate import alembic_config, upgrade
from tests.support import catalog_rows
from tests.support.database import server_url

NEW_INDEXES = {
    "ix_files_search_vector",
    "ix_files_listing",
    "ix_files_metadata_active",
    "ix_files_uploader_ext",
}
OLD_INDEXES = {"ix_files_search", "ix_files_status_uploaded"}


@pytest.fixture
def db_url() -> Iterator[str]:
    admin = server_url()
    name = f"artstore_test_mig_{uuid.uuid4().hex[:6]}"
    create_database(admin, name, drop_first=True)
    try:
        yield with_database(admin, name)
    finally:
        drop_database(admin, name)


def _sql(url: str, query: str, *args: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            return [dict(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def _indexes(url: str) -> set[str]:
    rows = _sql(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'catalog'")
    return {r["indexname"] for r in rows}


def _has_vector_column(url: str) -> bool:
    return bool(
        _sql(
            url,
            "SELECT 1 FROM information_schema.columns WHERE table_schema = 'catalog' "
            "AND table_name = 'files' AND column_name = 'search_vector'",
        )
    )


def _stale_vectors(url: str) -> int:
    rows = _sql(
        url,
        "SELECT count(*) AS n FROM catalog.files WHERE search_vector IS DISTINCT FROM "
        "catalog.search_document(original_filename, description, tags, metadata)",
    )
    return int(rows[0]["n"])


def test_vector_column_up_and_down(db_url: str) -> None:
    upgrade(db_url, "0003_search")
    _sql(db_url, catalog_rows.insert_sql("se-m", 40))
    assert _indexes(db_url) >= OLD_INDEXES and not _has_vector_column(db_url)

    upgrade(db_url, "0004_search_vector")
    # Rows already there got their vector; new rows and updates get theirs from PostgreSQL.
    assert _has_vector_column(db_url) and _stale_vectors(db_url) == 0
    assert _indexes(db_url) >= NEW_INDEXES and not OLD_INDEXES & _indexes(db_url)
    _sql(db_url, catalog_rows.insert_sql("se-m", 10, 40))
    _sql(db_url, "UPDATE catalog.files SET description = 'kingfisher' WHERE storage_path = $1",
         "files/x/3")  # fmt: skip
    assert _stale_vectors(db_url) == 0
    hit = _sql(db_url, "SELECT storage_path FROM catalog.files "
               "WHERE search_vector @@ websearch_to_tsquery('simple', 'kingfisher')")  # fmt: skip
    assert [r["storage_path"] for r in hit] == ["files/x/3"]
    with pytest.raises(asyncpg.GeneratedAlwaysError):
        _sql(db_url, "UPDATE catalog.files SET search_vector = ''::tsvector")

    command.downgrade(alembic_config(db_url), "0003_search")
    assert not _has_vector_column(db_url)
    assert _indexes(db_url) >= OLD_INDEXES and not NEW_INDEXES & _indexes(db_url)
    assert _sql(db_url, "SELECT count(*) AS n FROM catalog.files")[0]["n"] == 55

    upgrade(db_url)
    assert _has_vector_column(db_url) and _stale_vectors(db_url) == 0


def _indexdef(url: str, name: str) -> str:
    rows = _sql(url, "SELECT pg_get_indexdef($1::regclass) AS d", f"catalog.{name}")
    return str(rows[0]["d"])


def test_size_index_gains_the_upload_time_up_and_down(db_url: str) -> None:
    """0011: ix_files_size is (size, uploaded_at), so a size range within a date range is
    one range scan; down again it is (size) alone. Rows and every other index stay."""
    upgrade(db_url, "0010_authorization_codes")
    _sql(db_url, catalog_rows.insert_sql("se-m", 30))
    before = _indexes(db_url)
    assert _indexdef(db_url, "ix_files_size").endswith("USING btree (size)")

    upgrade(db_url, "0011_search_size_date")
    assert _indexdef(db_url, "ix_files_size").endswith("USING btree (size, uploaded_at)")
    assert _indexes(db_url) == before  # replaced under the same name, nothing left over

    command.downgrade(alembic_config(db_url), "0010_authorization_codes")
    assert _indexdef(db_url, "ix_files_size").endswith("USING btree (size)")
    assert _indexes(db_url) == before
    assert _sql(db_url, "SELECT count(*) AS n FROM catalog.files")[0]["n"] == 33
