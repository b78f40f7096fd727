"""API shapes of the storage-element registry (architecture §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from artstore.common.bounds import PlainText

# The SE's own shapes, re-exported: the registry answers them as the SEs do.
from artstore.contracts.se import Capacity as Capacity
from artstore.contracts.se import Mode as Mode
from artstore.contracts.se import SEStatus as SEStatus

URL = r"^https?://[^\s/]+(/[^\s]*)?$"


class StorageElement(BaseModel):
    storage_id: str
    name: str
    url: str
    mode: str
    status: str
    backend: str
    capacity: Capacity
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> StorageElement:
        return cls(
            storage_id=row["storage_id"],
            name=row["name"],
            url=row["url"],
            mode=row["mode"],
            status=row["status"],
            backend=row["backend"],
            capacity=Capacity(
                total_bytes=row["total_bytes"],
                used_bytes=row["used_bytes"],
                available_bytes=row["available_bytes"],
                file_count=row["file_count"],
            ),
            last_seen_at=row["last_seen_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


class Discover(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: PlainText = Field(pattern=URL, max_length=2000)


class Register(Discover):
    name: PlainText | None = Field(None, max_length=200)
    # When given, the SE at ``url`` must answer /info with this id (409 otherwise).
    storage_id: PlainText | None = Field(None, min_length=1, max_length=200)


class SEPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PlainText | None = Field(None, min_length=1, max_length=200)
    url: PlainText | None = Field(None, pattern=URL, max_length=2000)


class ModeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_mode: PlainText = Field(max_length=16)
    confirm: bool = False
