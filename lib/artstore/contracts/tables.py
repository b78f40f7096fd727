"""Every table the migrations create, on one ``metadata`` (Alembic's ``target_metadata``:
``alembic check`` compares it with a database migrated to head)."""

from __future__ import annotations

from artstore.contracts import admin_tables, catalog, jobs
from artstore.contracts.metadata import metadata

__all__ = ["admin_tables", "catalog", "jobs", "metadata"]
