"""previews (issue 16): the sizes of the previews a file copy has on its SE

``catalog.files.previews`` mirrors the attr's optional ``previews`` field (the sidecar
images next to the blob, docs/previews.md "Storage on the SE"): the longest sides that
exist, sorted. Written by the SE's catalog sync; read by query and search. Every existing
row gets ``'{}'`` (no preview yet). A constant default is a catalog-only change in
PostgreSQL 11+: no table rewrite.

Revision ID: 0009_previews
Revises: 0008_jobs
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009_previews"
down_revision = "0008_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "files",
        sa.Column(
            "previews",
            postgresql.ARRAY(sa.Integer()),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
        schema="catalog",
    )


def downgrade() -> None:
    op.drop_column("files", "previews", schema="catalog")
