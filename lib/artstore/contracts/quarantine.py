"""The SE's quarantine listing as its callers see it (``GET /api/v1/maintenance/quarantine``).

Written once here: the SE answers with these models and the admin reads them back.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from artstore.contracts.se import BIGINT_MAX

# An item id is URL-safe base64 of a quarantine entry (the SE's business): bounded so
# that a caller's id is checked for size before anything else.
ITEM_MAX_CHARS = 1400
ITEM_PATTERN = r"^[A-Za-z0-9_-]+$"


class QuarantineItem(BaseModel):
    """One quarantined copy: what was moved aside, when, and why."""

    model_config = ConfigDict(extra="ignore")

    item: str = Field(max_length=ITEM_MAX_CHARS, pattern=ITEM_PATTERN)
    file_id: str | None = None  # None: the damage left no trustworthy id (an orphan blob)
    path: str  # the storage path the copy had
    reason: str  # "unknown" for entries moved before reasons were recorded
    quarantined_at: datetime
    size: int = Field(ge=0, le=BIGINT_MAX)  # bytes held (blob, attr, reason): a purge frees them


class QuarantinePage(BaseModel):
    """The SE's page of items (the envelope of ``artstore.common.pagination.Page``)."""

    model_config = ConfigDict(extra="ignore")

    items: list[QuarantineItem]
    total: int = Field(ge=0)
    limit: int
    offset: int
    has_more: bool
