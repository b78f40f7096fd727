"""The admin module's tables (schema ``admin``): migrations 0002, 0006, 0007 and 0010 create them.
Only the admin reads or writes them; declared here so one metadata covers every table."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from artstore.contracts.metadata import metadata

SCHEMA = "admin"


def _ts(name: str, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("email", Text),
    Column("full_name", Text),
    Column("roles", ARRAY(Text), nullable=False),
    Column("status", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    _ts("locked_until", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("last_login_at", nullable=True),
    schema=SCHEMA,
)

service_accounts = Table(
    "service_accounts",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("client_id", String(128), nullable=False, unique=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("status", String(16), nullable=False),
    Column("secret_hash", Text, nullable=False),
    _ts("secret_expires_at"),
    _ts("created_at"),
    _ts("updated_at"),
    schema=SCHEMA,
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("family_id", UUID(as_uuid=False), nullable=False, index=True),
    Column(
        "user_id",
        UUID(as_uuid=False),
        ForeignKey("admin.users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("scope", Text, nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("used_at", nullable=True),
    _ts("revoked_at", nullable=True),
    schema=SCHEMA,
)

# Authorization codes of the console's sign-in (issue 17, migration 0010): only the
# SHA-256 of a code is stored; a used code is kept until it expires so that its reuse
# is seen (and the refresh family issued from it revoked, RFC 6749 §4.1.2).
authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column(
        "user_id",
        UUID(as_uuid=False),
        ForeignKey("admin.users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("scope", Text, nullable=False),
    Column("family_id", UUID(as_uuid=False), nullable=True),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("used_at", nullable=True),
    Index("ix_authorization_codes_expires_at", "expires_at"),
    schema=SCHEMA,
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_key", LargeBinary, nullable=False),  # AES-GCM: nonce + ciphertext
    Column("public_jwk", JSONB, nullable=False),
    Column("status", String(16), nullable=False),
    _ts("created_at"),
    _ts("retired_at", nullable=True),
    _ts("verify_until", nullable=True),
    schema=SCHEMA,
)

storage_elements = Table(
    "storage_elements",
    metadata,
    Column("storage_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("url", Text, nullable=False, unique=True),
    Column("mode", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("backend", String(32), nullable=False),
    Column("total_bytes", BigInteger, nullable=False),
    Column("used_bytes", BigInteger, nullable=False),
    Column("available_bytes", BigInteger, nullable=False),
    Column("file_count", BigInteger, nullable=False),
    _ts("last_seen_at", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    schema=SCHEMA,
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    _ts("at"),
    Column("actor", Text, nullable=False),
    Column("actor_kind", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_type", String(32)),
    Column("target_id", Text),
    Column("outcome", String(16), nullable=False),
    Column("request_id", Text),
    Column("details", JSONB, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_at", "at"),
    Index("ix_audit_actor", "actor"),
    Index("ix_audit_action", "action"),
    Index("ix_audit_target", "target_type", "target_id"),
    schema=SCHEMA,
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", Text, nullable=False),
    _ts("expires_at"),
    schema=SCHEMA,
)

# Per-subject not-before times of access tokens (migration 0006, issue 13).
revocations = Table(
    "revocations",
    metadata,
    Column("sub", Text, primary_key=True),
    _ts("not_before"),
    _ts("expires_at"),
    schema=SCHEMA,
)

# Signed checkpoints of the audit chain's head (migration 0007, issue 13): `signature` is
# a compact JWS by the issuer key `kid` over {seq, hash, at}.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("signature", Text, nullable=False),
    Column("kid", Text, nullable=False),
    _ts("at"),
    schema=SCHEMA,
)
