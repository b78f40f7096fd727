"""Job runs as the admin answers them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from artstore.jobs.repository import RunRow


class JobRun(BaseModel):
    id: int
    kind: str
    state: str
    storage_element_id: str | None
    target: str | None
    args: dict[str, Any]
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    summary: dict[str, Any] | None
    error: str | None
    requested_by: str | None
    # When a cancel of the running job was asked (it stops at its next check).
    abort_requested: datetime | None
    # The run this one retries.
    retry_of: int | None

    @classmethod
    def of(cls, row: RunRow) -> JobRun:
        return cls.model_validate(row, from_attributes=True)
