"""The body of ``PATCH /api/v1/files/{id}``, one model for the storage element that applies
it and the query module that relays it to every copy. Text is checked by the one text
policy (``artstore.common.text``); its checks raise ``ValidationFailed`` (not
``ValueError``), which pydantic lets through, so the answer is a 400 naming the field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

from artstore.common.text import check_description, check_metadata, check_tags


class FilePatch(BaseModel):
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
