"""The storage element's HTTP contract as its callers see it: the ``/api/v1/info``
answer, the modes, the checksum headers, the upload field names."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

# The largest figure a PostgreSQL bigint holds: capacity figures are stored in one.
BIGINT_MAX: Final = 2**63 - 1

Mode = Literal["edit", "rw", "ro", "ar"]
MODES: Final[tuple[Mode, ...]] = ("edit", "rw", "ro", "ar")
SEStatus = Literal["online", "degraded", "offline", "maintenance"]
Operation = Literal["upload", "download", "update", "delete", "list"]
RetentionPolicy = Literal["temporary", "permanent"]
RETENTION_POLICIES: Final[tuple[RetentionPolicy, ...]] = ("temporary", "permanent")

# The hex SHA-256 a client announces for the bytes it sends (RFC 9530's
# ``Content-Digest`` is accepted as well).
CHECKSUM_HEADER: Final = "X-Checksum-SHA256"
CONTENT_DIGEST_HEADER: Final = "Content-Digest"


class Capacity(BaseModel):
    """An SE's room, in bytes, and how many files it holds."""

    model_config = ConfigDict(extra="ignore")

    total_bytes: int = Field(ge=0, le=BIGINT_MAX)
    used_bytes: int = Field(ge=0, le=BIGINT_MAX)
    available_bytes: int = Field(ge=0, le=BIGINT_MAX)
    file_count: int = Field(ge=0, le=BIGINT_MAX)


class SEInfo(BaseModel):
    """``GET /api/v1/info``: who the SE is, its mode and its room (no token needed)."""

    model_config = ConfigDict(extra="ignore")

    storage_id: str = Field(min_length=1, max_length=200)
    name: str = Field(max_length=200)
    mode: Mode
    status: SEStatus
    version: str = Field("", max_length=100)
    backend: str = Field(max_length=100)
    allowed_operations: list[Operation]
    capacity: Capacity
