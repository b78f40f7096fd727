"""API shapes of the files domain."""

from __future__ import annotations

from typing import Literal

from artstore.common.file_patch import FilePatch
from artstore.common.files import FileMetadata as SharedFileMetadata
from artstore.storage_element.attr.model import Attr

__all__ = ["FileMetadata", "FilePatch", "ListStatus"]


class FileMetadata(SharedFileMetadata):
    @classmethod
    def of(cls, attr: Attr, storage_element_id: str) -> FileMetadata:
        data = attr.model_dump(exclude={"storage_path", "meta_checksum", "previews", "bitrot"})
        return cls(**data, previews=attr.preview_sizes(), storage_element_id=storage_element_id)


ListStatus = Literal["active", "expired", "deleted"]
