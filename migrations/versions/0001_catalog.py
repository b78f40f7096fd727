"""catalog schema: one row per file copy (architecture §5.6)

Revision ID: 0001_catalog
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_catalog"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS catalog")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "files",
        sa.Column("storage_element_id", sa.String(64), primary_key=True),
        sa.Column("file_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("storage_path", sa.Text, nullable=False),
        sa.Column("original_filename", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("checksum", sa.String(80), nullable=False),
        sa.Column("uploaded_by", sa.Text, nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("retention_policy", sa.String(16), nullable=False),
        sa.Column("ttl_days", sa.Integer),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("metadata", postgresql.JSONB, nullable=False),
        sa.Column("meta_checksum", sa.String(80), nullable=False),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("quarantined_at", sa.DateTime(timezone=True)),
        sa.Column("quarantine_reason", sa.Text),
        schema="catalog",
    )
    op.create_index("ix_files_file_id", "files", ["file_id"], schema="catalog")
    op.create_index(
        "ix_files_se_uploaded",
        "files",
        ["storage_element_id", sa.text("uploaded_at DESC")],
        schema="catalog",
    )
    op.create_index("ix_files_uploaded_at", "files", ["uploaded_at"], schema="catalog")
    op.create_index("ix_files_size", "files", ["size"], schema="catalog")
    op.create_index("ix_files_expires_at", "files", ["expires_at"], schema="catalog")
    op.create_index("ix_files_tags", "files", ["tags"], schema="catalog", postgresql_using="gin")
    op.execute(
        "CREATE INDEX ix_files_filename_trgm ON catalog.files "
        "USING gin (original_filename gin_trgm_ops)"
    )
    op.create_index("ix_files_filename", "files", ["original_filename"], schema="catalog")


def downgrade() -> None:
    op.drop_table("files", schema="catalog")
    op.execute("DROP SCHEMA IF EXISTS catalog CASCADE")
