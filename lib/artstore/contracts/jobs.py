"""Background jobs (schema ``jobs``, migration 0008): one ``jobs.runs`` row per run of a
job, kept for its history (architecture §10). The queue itself is procrastinate's tables
(schema ``procrastinate``, not in this metadata); a run names its queue job.

The job kinds are the procrastinate task names too: a job is deferred by its kind."""

from __future__ import annotations

from typing import Final, Literal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from artstore.contracts.metadata import metadata

SCHEMA = "jobs"
# procrastinate's own tables, functions and types (migration 0008); its connections set
# this as their search_path (artstore.jobs.queue).
QUEUE_SCHEMA = "procrastinate"

REPAIR_SCAN: Final = "repair.scan"
REPAIR_FILE: Final = "repair.file"
SE_GC: Final = "se.gc"
SE_RECONCILE: Final = "se.reconcile"
SE_SCRUB: Final = "se.scrub"
JOBS_PRUNE: Final = "jobs.prune"
KINDS: Final = (REPAIR_SCAN, REPAIR_FILE, SE_GC, SE_RECONCILE, SE_SCRUB, JOBS_PRUNE)

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATES: Final[tuple[JobState, ...]] = ("queued", "running", "succeeded", "failed", "cancelled")
# A run in one of these has ended; only these may be retried (failed, cancelled) or pruned.
FINISHED: Final[tuple[JobState, ...]] = ("succeeded", "failed", "cancelled")

KIND_MAX = 64
SE_ID_MAX = 64

runs = Table(
    "runs",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("kind", String(KIND_MAX), nullable=False),
    Column("state", String(16), nullable=False),
    Column("storage_element_id", String(SE_ID_MAX)),
    Column("target", Text),
    Column("args", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("queued_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("summary", JSONB),
    Column("error", Text),
    Column("requested_by", Text),
    Column("queue_job_id", BigInteger),
    # Set by cancel on a running run: the task sees it through should_abort().
    Column("abort_requested", DateTime(timezone=True)),
    # The run this one retries (POST /jobs/{id}/retry).
    Column("retry_of", BigInteger),
    CheckConstraint(
        "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="runs_state"
    ),
    Index("runs_queued_at", "queued_at"),
    Index("runs_kind_queued_at", "kind", "queued_at"),
    Index("runs_se_queued_at", "storage_element_id", "queued_at"),
    Index("runs_state", "state"),
    Index("runs_queue_job_id", "queue_job_id"),
    schema=SCHEMA,
)
