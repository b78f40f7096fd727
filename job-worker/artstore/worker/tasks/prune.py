"""``jobs.prune``: the history of ended runs older than ``WK_HISTORY_DAYS``, and the
queue's own ended jobs, are deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from artstore.contracts.jobs import JOBS_PRUNE
from artstore.jobs import repository
from artstore.worker.context import JobContext
from artstore.worker.tasks import job


@job(JOBS_PRUNE, queue="maintenance")
async def prune(ctx: JobContext) -> dict[str, Any]:
    days = ctx.settings.history_days
    before = datetime.now(UTC) - timedelta(days=days)
    async with ctx.engine.begin() as conn:
        deleted = await repository.prune(conn, before)
    await ctx.queue.job_manager.delete_old_jobs(
        nb_hours=days * 24, include_failed=True, include_cancelled=True, include_aborted=True
    )
    return {"runs_deleted": deleted, "older_than": before.isoformat(), "history_days": days}
