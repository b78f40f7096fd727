"""API shapes of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntry(BaseModel):
    seq: int
    at: datetime
    actor: str
    actor_kind: str
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class VerifyResult(BaseModel):
    ok: bool
    entries_checked: int
    first_bad_seq: int | None
