"""Bodies of ``/api/v1/quarantine``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from artstore.contracts.quarantine import ITEM_MAX_CHARS, QuarantineItem

# restored: a healthy copy of the file is on that SE again; restoring: a repair of the
# file is queued or running; unrecoverable: no healthy copy anywhere (or no file id
# to repair); damaged: none of these (restore it or purge it). docs/admin.md.
ItemState = Literal["restored", "restoring", "damaged", "unrecoverable"]


class AdminQuarantineItem(BaseModel):
    storage_element_id: str
    item: str
    file_id: str | None
    path: str
    reason: str
    quarantined_at: datetime
    size: int
    state: ItemState
    healthy_copies: int  # copies of the file that count, on any SE
    repair_job_id: int | None  # the repair queued or running, when there is one

    @classmethod
    def of(
        cls,
        storage_id: str,
        item: QuarantineItem,
        state: ItemState,
        healthy: int,
        job: int | None,
    ) -> AdminQuarantineItem:
        return cls(
            storage_element_id=storage_id,
            **item.model_dump(),
            state=state,
            healthy_copies=healthy,
            repair_job_id=job,
        )


class UnreachableSE(BaseModel):
    storage_element_id: str
    reason: str


class QuarantineListing(BaseModel):
    """A page over every SE's quarantine (SEs in id order, each in its own order);
    SEs that did not answer are named in ``unreachable`` and counted in no total."""

    items: list[AdminQuarantineItem]
    total: int
    limit: int
    offset: int
    has_more: bool
    unreachable: list[UnreachableSE]


class RestoreAccepted(BaseModel):
    job_id: int
    file_id: str
    already_queued: bool  # a repair of that file was waiting already: that one is it


class PurgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The item's id again: a purge removes bytes for good.
    confirm: str | None = Field(default=None, max_length=ITEM_MAX_CHARS)


class Purged(BaseModel):
    storage_element_id: str
    item: str
    path: str
    bytes_freed: int
