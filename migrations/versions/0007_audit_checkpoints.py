"""signed checkpoints of the audit chain (issue 13)

The audit log is a hash chain: each entry names its predecessor's hash, so an entry
changed or removed in the middle shows. Removing the newest entries does not: the
shorter chain is still consistent. So the admin periodically signs the chain's head
(seq, hash) with its token-signing key and stores the signature here; verify then
reports a chain that ends before a signed checkpoint's seq, or no longer has the
signed hash at it.

Revision ID: 0007_audit_checkpoints
Revises: 0006_revocations
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_audit_checkpoints"
down_revision = "0006_revocations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("kid", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema="admin",
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints", schema="admin")
