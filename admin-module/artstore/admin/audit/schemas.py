"""API shapes of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


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
    reason: str | None = Field(None, description="What is wrong, when not ok")
    checkpoints_checked: int = Field(0, description="Signed checkpoints verified")
    last_checkpoint_seq: int | None = Field(
        None, description="The newest signed checkpoint's entry: the chain must reach it"
    )
