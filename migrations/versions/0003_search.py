"""query module search: full text, extension, metadata and filter indexes (architecture §5.6, §8)

The catalog table itself is untouched (the SEs own it): full text is an expression
index over an IMMUTABLE function, so the query module and the index agree on one
definition and no SE write path changes.

Revision ID: 0003_search
Revises: 0002_admin
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0003_search"
down_revision = "0002_admin"
branch_labels = None
depends_on = None

# 'simple' config: no stemming and no stop words, so names, tags and ids in any language
# match word for word. Weights rank a hit in the file name above tags, description and
# metadata values. Punctuation in file names splits words ("q3_report-v2.pdf").
SEARCH_DOCUMENT = """
CREATE OR REPLACE FUNCTION catalog.search_document(
    filename text, description text, tags text[], metadata jsonb
) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple'::regconfig,
                                 regexp_replace(filename, '[^[:alnum:]]+', ' ', 'g')), 'A')
        || setweight(to_tsvector('simple'::regconfig,
                                 coalesce(array_to_string(tags, ' '), '')), 'B')
        || setweight(to_tsvector('simple'::regconfig, coalesce(description, '')), 'C')
        || setweight(jsonb_to_tsvector('simple'::regconfig, coalesce(metadata, '{}'::jsonb),
                                       '["string"]'), 'D')
$$
"""

# Lower-case extension without the dot; '' when the name has none.
FILE_EXTENSION = """
CREATE OR REPLACE FUNCTION catalog.file_extension(filename text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(coalesce(substring(filename from '\\.([^./]*)$'), ''))
$$
"""


def upgrade() -> None:
    op.execute(SEARCH_DOCUMENT)
    op.execute(FILE_EXTENSION)
    op.execute(
        "CREATE INDEX ix_files_search ON catalog.files USING gin "
        "(catalog.search_document(original_filename, description, tags, metadata))"
    )
    op.execute(
        "CREATE INDEX ix_files_extension ON catalog.files "
        "(catalog.file_extension(original_filename))"
    )
    op.execute(
        "CREATE INDEX ix_files_metadata ON catalog.files USING gin (metadata jsonb_path_ops)"
    )
    op.execute("CREATE INDEX ix_files_content_type ON catalog.files (content_type)")
    op.execute("CREATE INDEX ix_files_uploaded_by ON catalog.files (uploaded_by)")
    # One item per file: a search keeps a row only when no other live copy of its file
    # is preferred over it; this partial covering index answers that by index-only probe.
    op.execute(
        "CREATE INDEX ix_files_file_pref ON catalog.files "
        "(file_id, status, updated_at, version, storage_element_id) "
        "WHERE quarantined_at IS NULL"
    )
    # The default search (status active, newest first) walks this one in order.
    op.execute("CREATE INDEX ix_files_status_uploaded ON catalog.files (status, uploaded_at DESC)")


def downgrade() -> None:
    for name in (
        "ix_files_status_uploaded",
        "ix_files_file_pref",
        "ix_files_uploaded_by",
        "ix_files_content_type",
        "ix_files_metadata",
        "ix_files_extension",
        "ix_files_search",
    ):
        op.execute(f"DROP INDEX IF EXISTS catalog.{name}")
    op.execute("DROP FUNCTION IF EXISTS catalog.file_extension(text)")
    op.execute("DROP FUNCTION IF EXISTS catalog.search_document(text, text, text[], jsonb)")
