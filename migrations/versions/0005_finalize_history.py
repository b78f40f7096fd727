"""finalize history: who made a temporary file permanent, and when (issue 11, architecture §10)

Finalize keeps ``uploaded_by``/``uploaded_at`` of the temporary copy and records the
finalizer in two new attr fields, mirrored here. Both are NULL for every existing row
(no file was finalized with history before) and for files never finalized. Adding
nullable columns without a default is a catalog-only change: no table rewrite.

Revision ID: 0005_finalize_history
Revises: 0004_search_vector
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_finalize_history"
down_revision = "0004_search_vector"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("files", sa.Column("finalized_by", sa.Text(), nullable=True), schema="catalog")
    op.add_column(
        "files",
        sa.Column("finalized_at", sa.DateTime(timezone=True), nullable=True),
        schema="catalog",
    )


def downgrade() -> None:
    op.drop_column("files", "finalized_at", schema="catalog")
    op.drop_column("files", "finalized_by", schema="catalog")
