"""query module search at scale: a stored full-text vector and search indexes (architecture §8)

0003 indexed ``catalog.search_document(...)`` as an expression, so ranking a match meant
computing the document again from the row (four ``to_tsvector`` calls and a regexp per
row: seconds for a word that matches a quarter of a million rows). The vector is now a
stored generated column: PostgreSQL computes it on every INSERT/UPDATE from the same
function, so the SEs' write path stays as it is (they name their columns; a generated
column cannot be written and need not be).

Revision ID: 0004_search_vector
Revises: 0003_search
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004_search_vector"
down_revision = "0003_search"
branch_labels = None
depends_on = None

DOCUMENT = "catalog.search_document(original_filename, description, tags, metadata)"

# name -> definition; see docs/query.md ("Indexes") for the search each one serves.
INDEXES = {
    # Full text. The uploader is a second GIN column (btree_gin): alone the vector works
    # as from a one-column index (GIN searches any subset of its columns equally well),
    # and with an uploader ("my files about ...") one GIN scan skips through the words'
    # long posting lists instead of intersecting them whole (~25 ms -> ~5 ms at 1M rows).
    "ix_files_search_vector": "USING gin (uploaded_by, search_vector) WHERE quarantined_at IS NULL",
    # Listings (every search not sorted otherwise is newest first): the sort key with its
    # tie-break in index order, and the columns of the representative probe, so a count
    # of a listing is index-only. Replaces ix_files_status_uploaded of 0003.
    "ix_files_listing": "(status, uploaded_at DESC, file_id DESC) "
    "INCLUDE (updated_at, version, storage_element_id) WHERE quarantined_at IS NULL",
    # Metadata pairs among live files (the default status): a project whose files are all
    # deleted finds nothing here at once instead of visiting each deleted row.
    "ix_files_metadata_active": "USING gin (metadata jsonb_path_ops) "
    "WHERE status = 'active' AND quarantined_at IS NULL",
    # One uploader's files of one extension, newest first, without a sort.
    "ix_files_uploader_ext": "(uploaded_by, catalog.file_extension(original_filename), "
    "status, uploaded_at DESC) WHERE quarantined_at IS NULL",
}


def upgrade() -> None:
    # Trusted since PostgreSQL 13 (like pg_trgm of 0001: needs CREATE on the database).
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    # Rewrites the table once (every row gets its vector); minutes on a 1M-row catalog.
    op.execute(
        f"ALTER TABLE catalog.files ADD COLUMN search_vector tsvector "
        f"GENERATED ALWAYS AS ({DOCUMENT}) STORED"
    )
    op.execute("DROP INDEX IF EXISTS catalog.ix_files_search")
    op.execute("DROP INDEX IF EXISTS catalog.ix_files_status_uploaded")
    for name, definition in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON catalog.files {definition}")


def downgrade() -> None:
    for name in reversed(INDEXES):
        op.execute(f"DROP INDEX IF EXISTS catalog.{name}")
    op.execute("ALTER TABLE catalog.files DROP COLUMN IF EXISTS search_vector")
    # btree_gin stays: other schemas may use it, and it costs nothing unused.
    op.execute(f"CREATE INDEX ix_files_search ON catalog.files USING gin ({DOCUMENT})")
    op.execute("CREATE INDEX ix_files_status_uploaded ON catalog.files (status, uploaded_at DESC)")
