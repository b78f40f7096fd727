"""Redis pub/sub between the services: channel names and what is published on them.

Every message is a hint (subscribers also poll or expire what they cache), so a
subscriber skips a message it cannot read; the models say what a publisher sends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel

from artstore.contracts.se import Mode, SEStatus

# The admin announces a registry change (status or mode of an SE); the ingester and the
# query module re-read the registry.
SE_CHANNEL: Final = "artstore:storage-elements"
# The admin deleted a file everywhere; the query module drops it from its cache.
FILES_CHANNEL: Final = "artstore:files"
# The admin recorded a revocation; every service refuses the subject's older tokens.
REVOCATIONS_CHANNEL: Final = "artstore:revocations"


class SEChanged(BaseModel):
    storage_id: str
    status: SEStatus
    previous_status: SEStatus
    mode: Mode
    at: datetime


class FileChanged(BaseModel):
    event: Literal["deleted"]
    file_id: str


class Revocation(BaseModel):
    """Tokens of ``subject`` (the SHA-256 hex of the ``sub`` claim) issued before
    ``not_before`` are refused until ``expires_at`` (epoch seconds)."""

    subject: str
    not_before: float
    expires_at: int
