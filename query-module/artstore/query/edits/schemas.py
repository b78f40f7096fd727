"""The body of ``PATCH /api/v1/files/{id}``: exactly the storage element's, checked by the
one text policy (``artstore.common.text``) before any SE is asked."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from artstore.common.errors import ValidationFailed
from artstore.common.text import check_description, check_metadata, check_tags


class FileEdit(BaseModel):
    """At least one of description, tags, metadata; each replaces the file's value. The
    checks raise ``ValidationFailed`` (400 naming the field), as on the SE."""

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

    @model_validator(mode="after")
    def _some(self) -> FileEdit:
        if not self.changes():
            raise ValidationFailed("give at least one of description, tags, metadata")
        return self

    def changes(self) -> dict[str, Any]:
        """The SE's PATCH body: only the fields given."""
        return self.model_dump(exclude_none=True)
