"""``catalog.files``: one row per file copy, written by the SEs, read by the admin's
files view and the query module. Migrations 0001, 0003, 0004, 0005, 0009 and 0011 create it.

Also the one definition of "the copy that speaks for a file": among the copies that are
not quarantined, a live copy before a tombstone, then the newest (``updated_at``,
``version``), then the lowest storage id as a stable tie-break.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Computed,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    case,
    exists,
    func,
    literal_column,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from artstore.contracts.metadata import metadata

SCHEMA: Final = "catalog"
# catalog.search_document() and catalog.file_extension() are SQL functions of 0003_search.
SEARCH_DOCUMENT: Final = "catalog.search_document(original_filename, description, tags, metadata)"
TS_CONFIG: Final = "simple"  # the text search configuration search_document uses
_LIVE = text("quarantined_at IS NULL")

files = Table(
    "files",
    metadata,
    Column("storage_element_id", String(64), primary_key=True),
    Column("file_id", UUID(as_uuid=False), primary_key=True),
    Column("schema_version", Integer, nullable=False),
    Column("storage_path", Text, nullable=False),
    Column("original_filename", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("checksum", String(80), nullable=False),
    Column("uploaded_by", Text, nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("retention_policy", String(16), nullable=False),
    Column("ttl_days", Integer),
    Column("expires_at", DateTime(timezone=True)),
    Column("description", Text, nullable=False),
    Column("tags", ARRAY(Text), nullable=False),
    Column("metadata", JSONB, nullable=False),
    Column("meta_checksum", String(80), nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Set by reconcile/scrub when the copy was moved to quarantine/ (the row is kept as a
    # record of the damage): such a row is no file and never speaks for one.
    Column("quarantined_at", DateTime(timezone=True)),
    Column("quarantine_reason", Text),
    # Finalize history (0005): who made a temporary file permanent, and when.
    Column("finalized_by", Text),
    Column("finalized_at", DateTime(timezone=True)),
    # Previews (0009): the longest sides of the preview sidecars this copy has, sorted.
    Column("previews", ARRAY(Integer), nullable=False, server_default=text("'{}'")),
    # Full text (0004): computed by PostgreSQL on every write; never written.
    Column("search_vector", TSVECTOR, Computed(SEARCH_DOCUMENT, persisted=True)),
    # 0001
    Index("ix_files_file_id", "file_id"),
    Index("ix_files_se_uploaded", "storage_element_id", text("uploaded_at DESC")),
    Index("ix_files_uploaded_at", "uploaded_at"),
    Index("ix_files_size", "size", "uploaded_at"),  # uploaded_at since 0011
    Index("ix_files_expires_at", "expires_at"),
    Index("ix_files_tags", "tags", postgresql_using="gin"),
    Index(
        "ix_files_filename_trgm",
        "original_filename",
        postgresql_using="gin",
        postgresql_ops={"original_filename": "gin_trgm_ops"},
    ),
    Index("ix_files_filename", "original_filename"),
    # 0003
    Index("ix_files_extension", text("catalog.file_extension(original_filename)")),
    Index(
        "ix_files_metadata",
        "metadata",
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
    ),
    Index("ix_files_content_type", "content_type"),
    Index("ix_files_uploaded_by", "uploaded_by"),
    Index(
        "ix_files_file_pref",
        "file_id",
        "status",
        "updated_at",
        "version",
        "storage_element_id",
        postgresql_where=_LIVE,
    ),
    # 0004
    Index(
        "ix_files_search_vector",
        "uploaded_by",
        "search_vector",
        postgresql_using="gin",
        postgresql_where=_LIVE,
    ),
    Index(
        "ix_files_listing",
        "status",
        text("uploaded_at DESC"),
        text("file_id DESC"),
        postgresql_include=["updated_at", "version", "storage_element_id"],
        postgresql_where=_LIVE,
    ),
    Index(
        "ix_files_metadata_active",
        "metadata",
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
        postgresql_where=text("status = 'active' AND quarantined_at IS NULL"),
    ),
    Index(
        "ix_files_uploader_ext",
        "uploaded_by",
        text("catalog.file_extension(original_filename)"),
        "status",
        text("uploaded_at DESC"),
        postgresql_where=_LIVE,
    ),
    schema=SCHEMA,
)

# What a file is, as the admin and the query module answer it: every column but the
# SE's bookkeeping (where the blob lives, when the row was synced, quarantine, the vector).
INTERNAL_COLUMNS: Final = frozenset(
    {"storage_path", "meta_checksum", "synced_at", "quarantined_at", "quarantine_reason"}
    | {"search_vector"}
)
FILE_COLUMNS: Final = tuple(c for c in files.c if c.name not in INTERNAL_COLUMNS)


def tombstone_rank(t: FromClause) -> ColumnElement[int]:
    """0 for a live copy (active or expired), 1 for a tombstone: live copies first."""
    return case((t.c.status == "deleted", 1), else_=0)


def not_quarantined(t: FromClause) -> ColumnElement[bool]:
    return t.c.quarantined_at.is_(None)


def preference_order(t: FromClause) -> tuple[Any, ...]:
    """ORDER BY of the copies of one file, the one that speaks for it first (pair with
    ``not_quarantined``: a quarantined copy is not a copy)."""
    return (
        tombstone_rank(t),
        t.c.updated_at.desc(),
        t.c.version.desc(),
        t.c.storage_element_id,
    )


def speaks_for_file(f: FromClause) -> ColumnElement[bool]:
    """Row ``f`` (of ``files`` or an alias) is the copy that speaks for its file: no
    other copy that is not quarantined comes before it in ``preference_order``.

    Descending keys swap sides in the row comparison. Served by the partial covering
    index ix_files_file_pref (index-only, one probe per candidate row). ``f`` itself
    must be filtered with ``not_quarantined`` by the caller.
    """
    g = files.alias("better")
    preferred = tuple_(tombstone_rank(g), f.c.updated_at, f.c.version, g.c.storage_element_id) < (
        tuple_(tombstone_rank(f), g.c.updated_at, g.c.version, f.c.storage_element_id)
    )
    return ~exists().where(g.c.file_id == f.c.file_id, not_quarantined(g), preferred)


def ts_config() -> ColumnElement[Any]:
    """The regconfig literal matching the one in catalog.search_document."""
    return literal_column(f"'{TS_CONFIG}'::regconfig")
