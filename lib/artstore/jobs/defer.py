"""Deferring a job: its history row (``jobs.runs``, queued) and its queue job.

The task is deferred by name (the job's kind), so the admin defers jobs without
importing the worker. The task gets ``run_id`` (its history row) besides ``args``."""

from __future__ import annotations

from typing import Any

import procrastinate
from procrastinate import exceptions as pq_errors
from sqlalchemy.ext.asyncio import AsyncEngine

from artstore.jobs import repository

DEFAULT_QUEUE = "default"


async def defer_job(
    queue: procrastinate.App,
    engine: AsyncEngine,
    kind: str,
    *,
    args: dict[str, Any],
    storage_element_id: str | None = None,
    target: str | None = None,
    requested_by: str | None = None,
    dedupe: str | None = None,
    retry_of: int | None = None,
    queue_name: str = DEFAULT_QUEUE,
) -> int | None:
    """The new run's id; None when ``dedupe`` (a procrastinate queueing lock) names a
    job that is already queued (not yet started)."""
    async with engine.begin() as conn:
        run_id = await repository.insert_queued(
            conn,
            kind,
            args=args,
            storage_element_id=storage_element_id,
            target=target,
            requested_by=requested_by,
            retry_of=retry_of,
        )
    deferrer = queue.configure_task(
        kind, allow_unknown=True, queueing_lock=dedupe, queue=queue_name
    )
    try:
        job_id = await deferrer.defer_async(run_id=run_id, **args)
    except pq_errors.AlreadyEnqueued:
        async with engine.begin() as conn:
            await repository.delete_run(conn, run_id)
        return None
    except BaseException as exc:
        # The queue did not take it: the history must not show it waiting for ever.
        async with engine.begin() as conn:
            await repository.mark_failed(conn, run_id, f"could not be queued: {exc}")
        raise
    async with engine.begin() as conn:
        await repository.set_queue_job(conn, run_id, job_id)
    return run_id
