"""The body of ``PATCH /api/v1/files/{id}``: exactly the storage element's, checked by the
one text policy (``artstore.common.text``) before any SE is asked."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from artstore.common.errors import ValidationFailed
from artstore.common.file_patch import FilePatch


class FileEdit(FilePatch):
    """At least one of description, tags, metadata; each replaces the file's value."""

    @model_validator(mode="after")
    def _some(self) -> FileEdit:
        if not self.changes():
            raise ValidationFailed("give at least one of description, tags, metadata")
        return self

    def changes(self) -> dict[str, Any]:
        """The SE's PATCH body: only the fields given."""
        return self.model_dump(exclude_none=True)
