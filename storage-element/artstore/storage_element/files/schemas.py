"""API shapes of the files domain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from artstore.common.files import FileMetadata as SharedFileMetadata
from artstore.storage_element.attr.model import Attr


class FileMetadata(SharedFileMetadata):
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
