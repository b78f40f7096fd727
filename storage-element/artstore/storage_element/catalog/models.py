"""The catalog table (DESIGN §5.6): one row per file copy, mirroring its attr."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData(schema="catalog")

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
    # Finalize history (migration 0005): set when a temporary file was made permanent.
    Column("finalized_by", Text),
    Column("finalized_at", DateTime(timezone=True)),
    Column("meta_checksum", String(80), nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Set by reconcile/scrub when the copy was moved to quarantine/ (the row is kept).
    Column("quarantined_at", DateTime(timezone=True)),
    Column("quarantine_reason", Text),
)

# Columns copied from the attr, in attr terms.
ATTR_COLUMNS = (
    "schema_version",
    "file_id",
    "storage_path",
    "original_filename",
    "content_type",
    "size",
    "checksum",
    "uploaded_by",
    "uploaded_at",
    "updated_at",
    "version",
    "status",
    "retention_policy",
    "ttl_days",
    "expires_at",
    "description",
    "tags",
    "metadata",
    "finalized_by",
    "finalized_at",
    "meta_checksum",
)
