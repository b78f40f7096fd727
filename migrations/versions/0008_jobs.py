"""background jobs (issue 15): the run history and procrastinate's queue

``jobs.runs`` holds one row per run of a job (its history, architecture §10). The queue
is procrastinate's: its tables, types and functions go into their own schema,
``procrastinate``, from the schema file of the pinned version copied into
``migrations/sql/`` (so this revision creates the same objects whatever version is
installed later; an upgrade of procrastinate is a new revision that applies its
migration files, docs/jobs.md). procrastinate's connections use that schema as their
search_path (artstore.jobs.queue).

Revision ID: 0008_jobs
Revises: 0007_audit_checkpoints
Create Date: 2026-12-03
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.util import await_only

revision = "0008_jobs"
down_revision = "0007_audit_checkpoints"
branch_labels = None
depends_on = None

QUEUE_SCHEMA = "procrastinate"
QUEUE_SQL = Path(__file__).resolve().parent.parent / "sql" / "procrastinate-3.10.0.sql"


def _run_script(sql: str) -> None:
    # Many statements with dollar-quoted bodies: asyncpg's simple-query execute takes
    # them at once (a prepared statement takes one).
    raw = op.get_bind().connection.driver_connection
    await_only(raw.execute(sql))


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS jobs")
    op.create_table(
        "runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("storage_element_id", sa.String(64)),
        sa.Column("target", sa.Text()),
        sa.Column(
            "args",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("summary", postgresql.JSONB()),
        sa.Column("error", sa.Text()),
        sa.Column("requested_by", sa.Text()),
        sa.Column("queue_job_id", sa.BigInteger()),
        sa.Column("abort_requested", sa.DateTime(timezone=True)),
        sa.Column("retry_of", sa.BigInteger()),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name="runs_state",
        ),
        schema="jobs",
    )
    op.create_index("runs_queued_at", "runs", ["queued_at"], schema="jobs")
    op.create_index("runs_kind_queued_at", "runs", ["kind", "queued_at"], schema="jobs")
    op.create_index("runs_se_queued_at", "runs", ["storage_element_id", "queued_at"], schema="jobs")
    op.create_index("runs_state", "runs", ["state"], schema="jobs")
    op.create_index("runs_queue_job_id", "runs", ["queue_job_id"], schema="jobs")

    op.execute(f"CREATE SCHEMA IF NOT EXISTS {QUEUE_SCHEMA}")
    # SET LOCAL: only for this transaction, and put back before Alembic writes its
    # version row (public.alembic_version).
    bind = op.get_bind()
    before = bind.exec_driver_sql("SELECT current_setting('search_path')").scalar_one()
    bind.exec_driver_sql("SELECT set_config('search_path', 'procrastinate, pg_catalog', true)")
    _run_script(QUEUE_SQL.read_text(encoding="utf-8"))
    bind.execute(sa.text("SELECT set_config('search_path', :p, true)"), {"p": before})


def downgrade() -> None:
    op.execute(f"DROP SCHEMA IF EXISTS {QUEUE_SCHEMA} CASCADE")
    op.drop_table("runs", schema="jobs")
    op.execute("DROP SCHEMA IF EXISTS jobs")
