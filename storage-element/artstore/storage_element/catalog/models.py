"""The catalog table (declared once in ``artstore.contracts.catalog``): one row per file
copy, mirroring its attr."""

from __future__ import annotations

from artstore.contracts.catalog import files

__all__ = ["ATTR_COLUMNS", "ATTR_SELECT", "files"]

# Columns copied from the attr, in attr terms.
ATTR_COLUMNS = (
    "schema_version",
    "file_id",
    "storage_path",
    "original_filename",
    "content_type",
    "size",
    "checksum",
    "uploaded_by",
    "uploaded_at",
    "updated_at",
    "version",
    "status",
    "retention_policy",
    "ttl_days",
    "expires_at",
    "description",
    "tags",
    "metadata",
    "finalized_by",
    "finalized_at",
    "previews",  # the attr's preview sizes (integer[]), not the full entries
    "meta_checksum",
)

# What a read of a copy selects: the attr's columns, not the search vector (the query
# module's) nor the SE's bookkeeping.
ATTR_SELECT = tuple(files.c[name] for name in ATTR_COLUMNS)
