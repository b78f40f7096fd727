"""API shapes of the files domain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from artstore.common.files import FileMetadata as SharedFileMetadata
from artstore.common.text import check_description, check_metadata, check_tags
from artstore.storage_element.attr.model import Attr


class FileMetadata(SharedFileMetadata):
    @classmethod
    def of(cls, attr: Attr, storage_element_id: str) -> FileMetadata:
        data = attr.model_dump(exclude={"storage_path", "meta_checksum", "previews", "bitrot"})
        return cls(**data, previews=attr.preview_sizes(), storage_element_id=storage_element_id)


class FilePatch(BaseModel):
    """Text is checked by the one text policy (artstore.common.text). Its checks raise
    ``ValidationFailed`` (not ``ValueError``), which pydantic lets through, so the
    answer is the same 400 naming the field as for an upload."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, str] | None = None

    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        return None if value is None else check_description(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_tags(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else check_metadata(value)


ListStatus = Literal["active", "expired", "deleted"]
