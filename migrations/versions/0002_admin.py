"""admin schema: users, service accounts, refresh tokens, signing keys, SE registry,
audit log, leases (architecture §6)

Revision ID: 0002_admin
Revises: 0001_catalog
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_admin"
down_revision = "0001_catalog"
branch_labels = None
depends_on = None

S = "admin"
UUID = postgresql.UUID(as_uuid=False)


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS admin")
    op.create_table(
        "users",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("email", sa.Text),
        sa.Column("full_name", sa.Text),
        sa.Column("roles", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        _ts("locked_until", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("last_login_at", nullable=True),
        schema=S,
    )
    op.create_table(
        "service_accounts",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("client_id", sa.String(128), nullable=False, unique=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False),
        _ts("secret_expires_at"),
        _ts("created_at"),
        _ts("updated_at"),
        schema=S,
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("family_id", UUID, nullable=False, index=True),
        sa.Column(
            "user_id",
            UUID,
            sa.ForeignKey("admin.users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("scope", sa.Text, nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
        _ts("revoked_at", nullable=True),
        schema=S,
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("private_key", sa.LargeBinary, nullable=False),
        sa.Column("public_jwk", postgresql.JSONB, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("retired_at", nullable=True),
        _ts("verify_until", nullable=True),
        schema=S,
    )
    op.create_table(
        "storage_elements",
        sa.Column("storage_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False, unique=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("total_bytes", sa.BigInteger, nullable=False),
        sa.Column("used_bytes", sa.BigInteger, nullable=False),
        sa.Column("available_bytes", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.BigInteger, nullable=False),
        _ts("last_seen_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        schema=S,
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        _ts("at"),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("actor_kind", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32)),
        sa.Column("target_id", sa.Text),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("request_id", sa.Text),
        sa.Column("details", postgresql.JSONB, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        schema=S,
    )
    op.create_index("ix_audit_at", "audit_log", ["at"], schema=S)
    op.create_index("ix_audit_actor", "audit_log", ["actor"], schema=S)
    op.create_index("ix_audit_action", "audit_log", ["action"], schema=S)
    op.create_index("ix_audit_target", "audit_log", ["target_type", "target_id"], schema=S)
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        _ts("expires_at"),
        schema=S,
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS admin CASCADE")
