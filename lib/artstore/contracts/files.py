"""``FileMetadata`` and its ``copies`` form, one definition for every
service: the SE answers it, the ingester, query and admin answer it with ``copies``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, field_validator

FileStatus = Literal["active", "expired", "deleted"]
RetentionPolicy = Literal["temporary", "permanent"]


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
    # Who made a temporary file permanent, and when (finalize keeps uploaded_by/_at).
    finalized_by: str | None = None
    finalized_at: datetime | None = None
    # Longest sides (px) of the previews this copy has on its SE, sorted (issue 16,
    # docs/previews.md). A row or an answer older than them has none: [].
    previews: list[int] = Field(default_factory=list)

    @field_validator("previews", mode="before")
    @classmethod
    def _previews(cls, value: Any) -> Any:
        return [] if value is None else value


# Fields a row or an answer may lack (a catalog or an SE older than them): None then.
OPTIONAL_FIELDS = ("finalized_by", "finalized_at", "previews")


class Copy(BaseModel):
    storage_element_id: str
    status: FileStatus


class FileWithCopies(FileMetadata):
    """The metadata of the copy that speaks for a file, plus every copy of it."""

    copies: list[Copy]

    @classmethod
    def of_copies(cls, speaker: FileMetadata, copies: Iterable[FileMetadata]) -> Self:
        """From the copy that speaks for the file and every copy of it."""
        return cls(
            **speaker.model_dump(),
            copies=[Copy(storage_element_id=c.storage_element_id, status=c.status) for c in copies],
        )

    @classmethod
    def of(cls, row: Mapping[str, Any], copies: Iterable[Mapping[str, Any]]) -> Self:
        """From a catalog row (or an SE's answer) and the rows of every copy."""
        data = {
            k: row.get(k) if k in OPTIONAL_FIELDS else row[k]
            for k in FileMetadata.model_fields
            if k != "file_id"
        }
        return cls(
            **data,
            file_id=str(row["file_id"]),
            copies=[
                Copy(storage_element_id=str(c["storage_element_id"]), status=c["status"])
                for c in copies
            ],
        )


# What previews can be made of, by content type: the worker (which also checks the bytes)
# and the query module (202 vs 404 NO_PREVIEW without reading the file) share this list.
PREVIEWABLE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/tiff",
        "image/avif",
        "image/heic",
        "image/heif",
        "application/pdf",
    }
)


def is_previewable(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in PREVIEWABLE_TYPES
