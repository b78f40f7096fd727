"""API shapes of the uploads domain: the SE's FileMetadata plus the file's copies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


class Copy(BaseModel):
    storage_element_id: str
    status: str


class StoredFile(BaseModel):
    """``FileMetadata`` (DESIGN §5.5) of the first copy, plus every copy."""

    schema_version: int
    file_id: str
    original_filename: str
    content_type: str
    size: int
    checksum: str
    uploaded_by: str
    uploaded_at: datetime
    updated_at: datetime
    version: int
    status: str
    retention_policy: Literal["temporary", "permanent"]
    ttl_days: int | None
    expires_at: datetime | None
    description: str
    tags: list[str]
    metadata: dict[str, str]
    storage_element_id: str
    copies: list[Copy]

    @classmethod
    def of(cls, copies: list[dict[str, Any]]) -> StoredFile:
        first = copies[0]
        return cls(
            **{k: v for k, v in first.items() if k in cls.model_fields and k != "copies"},
            copies=[
                Copy(storage_element_id=str(c["storage_element_id"]), status=str(c["status"]))
                for c in copies
            ],
        )


class ItemError(BaseModel):
    code: str
    message: str


class BatchItem(BaseModel):
    filename: str
    status: Literal["stored", "failed"]
    file: StoredFile | None = None
    error: ItemError | None = None


class BatchResult(BaseModel):
    items: list[BatchItem]
    stored: int
    failed: int
