"""per-subject token revocations (issue 13)

Disabling, deleting or demoting a user records a not-before time for its subject:
access tokens issued before it are refused by every service. A row is only needed
while such tokens can still be alive, so the admin deletes rows past ``expires_at``.

Revision ID: 0006_revocations
Revises: 0005_finalize_history
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_revocations"
down_revision = "0005_finalize_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revocations",
        sa.Column("sub", sa.Text, primary_key=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema="admin",
    )


def downgrade() -> None:
    op.drop_table("revocations", schema="admin")
