"""authorization codes (issue 17): the console's OAuth 2.0 code + PKCE sign-in

One row per code the admin's login page issued: the SHA-256 of the code (never the code),
the client, redirect URI and PKCE challenge it is bound to, the user and scope, and the
refresh-token family issued from it (revoked if the code comes back). Rows live about a
minute; the admin deletes those well past ``expires_at``.

Revision ID: 0010_authorization_codes
Revises: 0009_previews
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_authorization_codes"
down_revision = "0009_previews"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=False),
            sa.ForeignKey("admin.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("family_id", postgresql.UUID(as_uuid=False), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        schema="admin",
    )
    op.create_index(
        "ix_authorization_codes_expires_at",
        "authorization_codes",
        ["expires_at"],
        schema="admin",
    )


def downgrade() -> None:
    op.drop_table("authorization_codes", schema="admin")
