"""API shapes of the files domain."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from artstore.storage_element.attr.model import Attr, FileStatus, RetentionPolicy


class FileMetadata(BaseModel):
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
    status: FileStatus
    retention_policy: RetentionPolicy
    ttl_days: int | None
    expires_at: datetime | None
    description: str
    tags: list[str]
    metadata: dict[str, str]
    storage_element_id: str

    @classmethod
    def of(cls, attr: Attr, storage_element_id: str) -> FileMetadata:
        data = attr.model_dump(exclude={"storage_path", "meta_checksum"})
        return cls(**data, storage_element_id=storage_element_id)


class FilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=4000)
    tags: list[str] | None = None
    metadata: dict[str, str] | None = None


ListStatus = Literal["active", "expired", "deleted"]
