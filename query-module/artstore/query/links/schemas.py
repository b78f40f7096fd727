"""API shapes of signed links."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_EXPIRES_IN = 604800  # 7 days (architecture §8)


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: int = Field(3600, ge=1, le=MAX_EXPIRES_IN, description="Lifetime, seconds")


class LinkAnswer(BaseModel):
    url: str
    expires_at: datetime
