"""query module search: a size range within a date range from one index (issue 19)

0001's ix_files_size serves a size range alone. With a date range as well (the search
"sizes between, uploaded between, by size"), PostgreSQL ANDed the size bitmap with one
of ix_files_uploaded_at over every row of the date range (a month: 110,000 entries, ~20
ms at 1M rows) before reading the ~450 rows that match both. The index now has the
upload time after the size, so one range scan of it checks both and reads only the
matching rows (~1 ms). It replaces the old one (same name, one index to maintain, 8
bytes wider an entry) and still serves every search the old one did: size is its first
column.

Revision ID: 0011_search_size_date
Revises: 0010_authorization_codes
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0011_search_size_date"
down_revision = "0010_authorization_codes"
branch_labels = None
depends_on = None

NAME = "ix_files_size"


def _replace(columns: str) -> None:
    # Built under another name first, then swapped (one transaction either way).
    op.execute(f"CREATE INDEX {NAME}_new ON catalog.files ({columns})")
    op.execute(f"DROP INDEX catalog.{NAME}")
    op.execute(f"ALTER INDEX catalog.{NAME}_new RENAME TO {NAME}")


def upgrade() -> None:
    _replace("size, uploaded_at")


def downgrade() -> None:
    _replace("size")
