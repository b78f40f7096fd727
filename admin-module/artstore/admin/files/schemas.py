"""API shapes of the files view: the SE's FileMetadata plus ``copies``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class Copy(BaseModel):
    storage_element_id: str
    status: str


class AdminFile(BaseModel):
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
    retention_policy: str
    ttl_days: int | None
    expires_at: datetime | None
    description: str
    tags: list[str]
    metadata: dict[str, str]
    storage_element_id: str
    copies: list[Copy]

    @classmethod
    def of(cls, row: dict[str, Any], copies: list[dict[str, Any]]) -> AdminFile:
        data = {k: row[k] for k in cls.model_fields if k not in ("copies", "file_id")}
        return cls(
            **data,
            file_id=str(row["file_id"]),
            copies=[Copy(storage_element_id=c["storage_element_id"], status=c["status"])
                    for c in copies],
        )  # fmt: skip
