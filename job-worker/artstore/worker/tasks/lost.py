"""Runs whose worker died (SIGKILL, a lost host): marked failed ``worker lost``, and
queued again as a new run where the job allows (its ``retry``).

procrastinate knows a worker by its heartbeat: a job in ``doing`` whose worker has not
beaten for ``WK_STALLED_SECONDS`` is stalled. Such a job is ended failed in the queue,
so it never runs twice; a run still ``running`` whose queue job is no longer being
done (it ended without the run being told) is lost too."""

from __future__ import annotations

import logging
from typing import Any

from procrastinate.exceptions import ProcrastinateException
from procrastinate.jobs import Status

from artstore.jobs import repository
from artstore.jobs.defer import defer_job
from artstore.jobs.repository import RunRow
from artstore.worker.state import WorkerState
from artstore.worker.tasks import JOBS

log = logging.getLogger("artstore.worker.lost")

LOST_CHECK = "jobs.lost_check"
WORKER_LOST = "worker lost"


async def check_lost_runs(state: WorkerState) -> dict[str, Any]:
    manager = state.queue.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=state.settings.stalled_seconds)
    lost: list[int] = []
    for pq_job in stalled:
        if pq_job.id is None:
            continue
        try:
            await manager.finish_job_by_id_async(pq_job.id, status=Status.FAILED, delete_job=False)
        except ProcrastinateException as exc:
            # Another worker's check ended it first (or it ended by itself meanwhile).
            log.info("stalled job %s already ended: %s", pq_job.id, exc)
        async with state.engine.connect() as conn:
            run = await repository.by_queue_job(conn, pq_job.id)
        if run is not None and await _lose(state, run):
            lost.append(run.id)
    # A run left running whose queue job ended or vanished.
    async with state.engine.connect() as conn:
        running = await repository.running(conn)
    for run in running:
        if run.queue_job_id is None:
            continue
        status = await _status(state, run.queue_job_id)
        if status is not None and status == Status.DOING:
            continue
        # Read it again: the job may have ended properly meanwhile.
        async with state.engine.connect() as conn:
            fresh = await repository.get(conn, run.id)
        if fresh is not None and fresh.state == "running" and await _lose(state, fresh):
            lost.append(run.id)
    return {"lost": lost}


async def _status(state: WorkerState, job_id: int) -> Status | None:
    try:
        return await state.queue.job_manager.get_job_status_async(job_id)
    except (TypeError, KeyError):  # no such job (pruned)
        return None


async def _lose(state: WorkerState, run: RunRow) -> bool:
    async with state.engine.begin() as conn:
        if not await repository.mark_failed(conn, run.id, WORKER_LOST):
            return False
    state.metrics.jobs_failed.labels(run.kind).inc()
    state.metrics.jobs_ended.labels(run.kind, "failed").inc()
    log.warning("job %s run %s: %s", run.kind, run.id, WORKER_LOST)
    spec = JOBS.get(run.kind)
    # Once: a run that is itself a requeue of a lost run is not requeued again.
    if spec is not None and spec.retry > 0 and run.retry_of is None and run.abort_requested is None:
        new = await defer_job(
            state.queue,
            state.engine,
            run.kind,
            args=run.args,
            storage_element_id=run.storage_element_id,
            target=run.target,
            requested_by=run.requested_by,
            retry_of=run.id,
            queue_name=spec.queue,
        )
        log.info("job %s run %s queued again as run %s", run.kind, run.id, new)
    return True
