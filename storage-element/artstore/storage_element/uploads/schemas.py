"""API shapes of upload sessions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from artstore.common.text import (
    check_description,
    check_filename,
    check_media_type,
    check_metadata,
    check_tags,
)

MAX_EXPIRES_IN = 30 * 86400


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    length: int = Field(ge=0, description="Size of the whole file, bytes")
    file_id: uuid.UUID | None = Field(
        None, description="Id of the file it becomes (and of the session)"
    )
    filename: str = "file"
    content_type: str = "application/octet-stream"
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    retention_policy: Literal["temporary", "permanent"] | None = None
    ttl_days: int | None = None
    checksum: str | None = Field(None, description="hex SHA-256 the whole file must have")
    expires_in: int = Field(86400, ge=1, le=MAX_EXPIRES_IN, description="Seconds it is kept")

    # The one text policy (artstore.common.text); its ValidationFailed passes through
    # pydantic as the same 400 naming the field that an upload answers.
    @field_validator("filename")
    @classmethod
    def _filename(cls, value: str) -> str:
        return check_filename("filename", value)

    @field_validator("content_type")
    @classmethod
    def _content_type(cls, value: str) -> str:
        return check_media_type("content_type", value)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        return None if value is None else check_description(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return check_tags(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        return check_metadata(value)


class Session(BaseModel):
    session_id: str
    file_id: str
    offset: int
    length: int
    expires_at: datetime
    storage_element_id: str

    @classmethod
    def of(cls, data: dict[str, Any], storage_element_id: str) -> Session:
        return cls(
            session_id=data["session_id"],
            file_id=data["session_id"],
            offset=data["offset"],
            length=data["length"],
            expires_at=data["expires_at"],
            storage_element_id=storage_element_id,
        )
