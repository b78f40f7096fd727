"""API shapes of the uploads domain: the SE's FileMetadata plus the file's copies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from artstore.common.files import FileMetadata, FileWithCopies


class StoredFile(FileWithCopies):
    """``FileMetadata`` of the first copy, plus every copy (SE answers carry both)."""

    @classmethod
    def from_copies(cls, copies: list[FileMetadata]) -> StoredFile:
        return cls.of_copies(copies[0], copies)


class ItemError(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None  # as in the error envelope, e.g. the field


class BatchItem(BaseModel):
    filename: str
    status: Literal["stored", "failed"]
    file: StoredFile | None = None
    error: ItemError | None = None


class BatchResult(BaseModel):
    items: list[BatchItem]
    stored: int
    failed: int
