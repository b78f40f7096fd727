"""Each job as a procrastinate task that records its run in ``jobs.runs``."""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

import procrastinate
from procrastinate.job_context import AbortReason
from sqlalchemy.ext.asyncio import AsyncConnection

from artstore.common.redact import describe
from artstore.jobs import repository
from artstore.worker.state import WorkerState
from artstore.worker.tasks import JOBS, TASK_MODULES, JobAborted, JobSpec

log = logging.getLogger("artstore.worker.jobs")

# A run's error text is for people: long enough for a traceback's last line.
ERROR_MAX = 4000


def load_jobs(extra: str = "") -> dict[str, JobSpec]:
    names = [*TASK_MODULES, *(m.strip() for m in extra.split(",") if m.strip())]
    for module in names:
        importlib.import_module(module)
    return dict(JOBS)


def register_jobs(state: WorkerState) -> None:
    for spec in load_jobs(state.settings.extra_task_modules).values():
        state.queue.task(
            name=spec.kind,
            queue=spec.queue,
            retry=spec.retry,
            pass_context=True,
        )(_wrapped(state, spec))


def _wrapped(state: WorkerState, spec: JobSpec) -> Any:
    async def run(pq: procrastinate.JobContext, run_id: int | None = None, **kwargs: Any) -> None:
        await run_job(state, spec, pq, run_id, kwargs)

    run.__name__ = spec.kind.replace(".", "_")
    return run


async def run_job(
    state: WorkerState,
    spec: JobSpec,
    pq: procrastinate.JobContext,
    run_id: int | None,
    kwargs: dict[str, Any],
) -> None:
    engine = state.engine
    async with engine.begin() as conn:
        if run_id is None:
            # Deferred without a history row (straight through procrastinate).
            run_id = await repository.insert_queued(conn, spec.kind, args=kwargs, state="running")
            if pq.job.id is not None:
                await repository.set_queue_job(conn, run_id, pq.job.id)
        elif not await repository.mark_running(conn, run_id):
            # Cancelled while queued (or already ended): nothing to do.
            log.info("job %s run %s is no longer queued; skipped", spec.kind, run_id)
            return
    state.metrics.jobs_run.labels(spec.kind).inc()
    cancel_asked = False

    def abort_check() -> bool:
        return cancel_asked or pq.should_abort()

    ctx = state.context(run_id, abort_check)
    try:
        summary = await spec.fn(ctx, **kwargs)
    except (asyncio.CancelledError, JobAborted) as exc:
        reason = pq.abort_reason()
        async with engine.begin() as conn:
            if reason == AbortReason.SHUTDOWN:
                await _ended_badly(state, spec, conn, run_id, pq, "worker stopped")
            else:
                await repository.mark_cancelled(conn, run_id, "cancelled")
                state.metrics.jobs_ended.labels(spec.kind, "cancelled").inc()
        if isinstance(exc, JobAborted):
            raise procrastinate.exceptions.JobAborted(str(exc)) from exc
        raise
    except Exception as exc:
        message = describe(exc)[:ERROR_MAX]
        log.warning("job %s run %s failed: %s", spec.kind, run_id, message)
        async with engine.begin() as conn:
            await _ended_badly(state, spec, conn, run_id, pq, message)
        raise
    async with engine.begin() as conn:
        if abort_check() or await repository.abort_requested(conn, run_id):
            # Ended on its own after a cancel was asked: it did stop, say so.
            await repository.mark_cancelled(conn, run_id, "cancelled")
            state.metrics.jobs_ended.labels(spec.kind, "cancelled").inc()
        else:
            await repository.mark_succeeded(conn, run_id, summary)
            state.metrics.jobs_ended.labels(spec.kind, "succeeded").inc()


async def _ended_badly(
    state: WorkerState,
    spec: JobSpec,
    conn: AsyncConnection,
    run_id: int,
    pq: procrastinate.JobContext,
    message: str,
) -> None:
    if pq.job.attempts < spec.retry:
        # procrastinate runs it again (same run): it waits in the queue meanwhile.
        await repository.mark_requeued(conn, run_id, message)
        state.metrics.jobs_ended.labels(spec.kind, "queued").inc()
    else:
        await repository.mark_failed(conn, run_id, message)
        state.metrics.jobs_ended.labels(spec.kind, "failed").inc()
        state.metrics.jobs_failed.labels(spec.kind).inc()
