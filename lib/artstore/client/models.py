"""Typed results. Every model accepts unknown fields (``extra="allow"``) so a newer
server adding a field does not break an older client."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Copy(Model):
    storage_element_id: str
    status: str


class FileMetadata(Model):
    """architecture §5.2 attr fields as the services answer them, plus ``copies`` (ingester,
    query, admin) and ``score`` (full-text search only)."""

    file_id: str
    original_filename: str
    content_type: str = "application/octet-stream"
    size: int
    checksum: str
    uploaded_by: str = ""
    uploaded_at: datetime
    updated_at: datetime | None = None
    version: int = 1
    status: str = "active"
    retention_policy: str = "permanent"
    ttl_days: int | None = None
    expires_at: datetime | None = None
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    storage_element_id: str | None = None
    finalized_by: str | None = None
    finalized_at: datetime | None = None
    copies: list[Copy] = Field(default_factory=list)
    score: float | None = None
    schema_version: int = 1

    @property
    def sha256(self) -> str:
        return self.checksum.removeprefix("sha256:")


class Page(Model, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
    has_more: bool


class Capacity(Model):
    total_bytes: int = 0
    used_bytes: int = 0
    available_bytes: int = 0
    file_count: int = 0


class StorageElement(Model):
    """An item of the admin's SE registry."""

    storage_id: str
    name: str
    url: str
    mode: str
    status: str
    backend: str
    capacity: Capacity
    last_seen_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SEInfo(Model):
    """An SE's own ``GET /api/v1/info``."""

    storage_id: str
    name: str = ""
    mode: str
    status: str
    version: str = ""
    backend: str = ""
    allowed_operations: list[str] = Field(default_factory=list)
    capacity: Capacity = Field(default_factory=Capacity)


class ModeChange(Model):
    previous_mode: str
    current_mode: str
    transitioned_at: datetime | None = None


class ReconcileIssue(Model):
    kind: str
    path: str = ""
    action: str = ""
    file_id: str | None = None


class ReconcileReport(Model):
    started_at: datetime | None = None
    finished_at: datetime | None = None
    files_checked: int = 0
    issues: list[ReconcileIssue] = Field(default_factory=list)
    summary: dict[str, int] = Field(default_factory=dict)


class GcResult(Model):
    expired: int
    reclaimed: int
    bytes_freed: int


class RebuildJob(Model):
    job_id: str


class User(Model):
    id: str
    username: str
    email: str | None = None
    full_name: str | None = None
    roles: list[str] = Field(default_factory=list)
    status: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_login_at: datetime | None = None
    locked_until: datetime | None = None


class ServiceAccount(Model):
    id: str
    client_id: str
    name: str
    description: str = ""
    scopes: list[str] = Field(default_factory=list)
    status: str
    secret_expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    client_secret: str | None = None  # only in the answer to create


class RotatedSecret(Model):
    client_id: str
    client_secret: str
    secret_expires_at: datetime | None = None


class AuditEntry(Model):
    seq: int
    at: datetime
    actor: str
    actor_kind: str
    action: str
    target_type: str | None = None
    target_id: str | None = None
    outcome: str
    request_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""


class JobRun(Model):
    id: int
    kind: str
    state: str
    storage_element_id: str | None = None
    target: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    summary: dict[str, Any] | None = None
    error: str | None = None
    requested_by: str | None = None
    abort_requested: datetime | None = None
    retry_of: int | None = None


class QuarantinedItem(Model):
    storage_element_id: str
    item: str
    file_id: str | None = None
    path: str
    reason: str
    quarantined_at: datetime
    size: int
    state: str  # restored | restoring | damaged | unrecoverable
    healthy_copies: int = 0
    repair_job_id: int | None = None


class UnreachableSE(Model):
    storage_element_id: str
    reason: str


class QuarantineListing(Page[QuarantinedItem]):
    unreachable: list[UnreachableSE] = Field(default_factory=list)


class RestoreAccepted(Model):
    job_id: int
    file_id: str
    already_queued: bool = False


class Purged(Model):
    storage_element_id: str
    item: str
    path: str
    bytes_freed: int


class AuditVerify(Model):
    ok: bool
    entries_checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoints_checked: int = 0
    last_checkpoint_seq: int | None = None


class Link(Model):
    url: str
    expires_at: datetime


class TokenSet(Model):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6749 token type
    expires_in: int = 0
    scope: str = ""
    refresh_token: str | None = None


class Me(Model):
    sub: str
    kind: str
    name: str = ""
    scopes: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)


class BatchItem(Model):
    filename: str
    status: str
    file: FileMetadata | None = None
    error: dict[str, Any] | None = None


class BatchResult(Model):
    items: list[BatchItem]
    stored: int
    failed: int


class DownloadResult(Model):
    path: str
    size: int
    sha256: str
    resumed_from: int = 0
