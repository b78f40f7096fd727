"""The storage element's HTTP contract as its callers see it: the ``/api/v1/info``
answer, the modes, the checksum headers, the upload field names."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from artstore.contracts.files import RetentionPolicy

# The largest figure a PostgreSQL bigint holds: the admin stores capacity figures in one.
BIGINT_MAX: Final = 2**63 - 1

Mode = Literal["edit", "rw", "ro", "ar"]
MODES: Final[tuple[Mode, ...]] = ("edit", "rw", "ro", "ar")
SEStatus = Literal["online", "degraded", "offline", "maintenance"]
Operation = Literal["upload", "download", "update", "delete", "list"]
RETENTION_POLICIES: Final[tuple[RetentionPolicy, ...]] = ("temporary", "permanent")

# The hex SHA-256 a client announces for the bytes it sends (RFC 9530's
# ``Content-Digest`` is accepted as well).
CHECKSUM_HEADER: Final = "X-Checksum-SHA256"
CONTENT_DIGEST_HEADER: Final = "Content-Digest"
# An upload session's append (``PATCH /api/v1/uploads/{id}``) also takes a chunk's digest
# in these RFC 9530 algorithms (``Content-Digest: sha=:<base64>:``): tus clients send SHA-1
# or MD5 (the tus checksum extension), the ingester passes them on. Key → hashlib name.
SESSION_DIGESTS: Final = {"sha-256": "sha256", "sha": "sha1", "md5": "md5"}
# Sent with a download (any value): stream the bytes, never answer with a 307 to a
# presigned URL (SE_S3_PRESIGNED_DOWNLOADS); the query module sends it when it must relay.
NO_REDIRECT_HEADER: Final = "X-ArtStore-No-Redirect"

# Upload fields (``POST /api/v1/files``: multipart form parts or query parameters; the
# ingester takes the same names). The bytes are the multipart part ``file``.
FILE_PART: Final = "file"
UPLOAD_FIELDS: Final = (
    "filename",
    "description",
    "tags",  # one tag per field (repeatable), or a JSON array of tags
    "metadata",  # a JSON object of string values
    "retention_policy",
    "ttl_days",  # temporary files only
    "file_id",  # a replica or a restore keeps its file's id
)
TTL_DAYS_MIN: Final = 1
TTL_DAYS_MAX: Final = 3650


class Capacity(BaseModel):
    """An SE's room, in bytes, and how many files it holds."""

    model_config = ConfigDict(extra="ignore")

    total_bytes: int = Field(ge=-BIGINT_MAX, le=BIGINT_MAX)
    used_bytes: int = Field(ge=-BIGINT_MAX, le=BIGINT_MAX)
    available_bytes: int = Field(ge=-BIGINT_MAX, le=BIGINT_MAX)
    file_count: int = Field(ge=-BIGINT_MAX, le=BIGINT_MAX)


class SEInfo(BaseModel):
    """``GET /api/v1/info``: who the SE is, its mode and its room (no token needed)."""

    model_config = ConfigDict(extra="ignore")

    # 64: the width of storage_element_id in the catalog and of the admin's registry.
    storage_id: str = Field(min_length=1, max_length=64)
    name: str
    mode: Mode
    status: SEStatus
    version: str = Field("", max_length=100)
    backend: str = Field(max_length=32)
    allowed_operations: list[Operation]
    capacity: Capacity
