"""The admin module's tables: declared once in ``artstore.contracts.admin_tables``."""

from __future__ import annotations

from artstore.contracts.admin_tables import (
    audit_checkpoints,
    audit_log,
    leases,
    refresh_tokens,
    revocations,
    service_accounts,
    signing_keys,
    storage_elements,
    users,
)
from artstore.contracts.metadata import metadata

__all__ = [
    "audit_checkpoints",
    "audit_log",
    "leases",
    "metadata",
    "refresh_tokens",
    "revocations",
    "service_accounts",
    "signing_keys",
    "storage_elements",
    "users",
]
