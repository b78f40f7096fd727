"""API shapes of the signing keys (public parts only)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from artstore.admin.keys.service import SigningKey


class KeyInfo(BaseModel):
    kid: str
    alg: str = "RS256"
    status: str
    published: bool
    created_at: datetime
    retired_at: datetime | None
    verify_until: datetime | None

    @classmethod
    def of(cls, key: SigningKey, now: datetime) -> KeyInfo:
        return cls(
            kid=key.kid,
            status=key.status,
            published=key.published(now),
            created_at=key.created_at,
            retired_at=key.retired_at,
            verify_until=key.verify_until,
        )
