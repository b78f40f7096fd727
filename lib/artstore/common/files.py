"""Moved to ``artstore.contracts.files`` (issue 14); re-exported for existing imports."""

from __future__ import annotations

from artstore.contracts.files import (
    OPTIONAL_FIELDS,
    Copy,
    FileMetadata,
    FileStatus,
    FileWithCopies,
    RetentionPolicy,
)

__all__ = [
    "OPTIONAL_FIELDS",
    "Copy",
    "FileMetadata",
    "FileStatus",
    "FileWithCopies",
    "RetentionPolicy",
]
