"""When jobs run by themselves: procrastinate periodic tasks (cron strings in settings)
that defer the recorded jobs, and the check for runs of a worker that died.

The periodic tasks here are not recorded in the history (they only defer); the jobs
they defer are. procrastinate defers each periodic task once per tick whatever the
number of workers, and the jobs carry a queueing lock, so a job still waiting is not
queued twice."""

from __future__ import annotations

import logging
from typing import Any

from artstore.contracts.jobs import JOBS_PRUNE, REPAIR_SCAN, SE_GC, SE_RECONCILE, SE_SCRUB
from artstore.jobs.defer import defer_job
from artstore.worker.previews.service import PREVIEW_SCAN
from artstore.worker.previews.settings import scan_cron
from artstore.worker.state import WorkerState
from artstore.worker.tasks import JOBS
from artstore.worker.tasks.lost import LOST_CHECK, check_lost_runs

log = logging.getLogger("artstore.worker.schedule")

SCHEDULE_PREFIX = "schedule."


def _crons(state: WorkerState) -> dict[str, str]:
    s = state.settings
    return {
        SE_GC: s.gc_cron,
        SE_RECONCILE: s.reconcile_cron,
        SE_SCRUB: s.scrub_cron,
        REPAIR_SCAN: s.repair_scan_cron,
        JOBS_PRUNE: s.prune_cron,
        PREVIEW_SCAN: scan_cron(s.preview_scan_seconds),
    }


async def defer_for_every_se(state: WorkerState, kind: str) -> list[int]:
    """One ``kind`` run per registered SE that is not offline."""
    await state.registry.refresh()
    deferred: list[int] = []
    for se in state.registry.all():
        if se.status == "offline":
            continue
        run_id = await defer_job(
            state.queue,
            state.engine,
            kind,
            args={"storage_element_id": se.storage_id},
            storage_element_id=se.storage_id,
            requested_by="schedule",
            dedupe=f"{kind}:{se.storage_id}",
            queue_name=JOBS[kind].queue,
        )
        if run_id is not None:
            deferred.append(run_id)
    return deferred


async def defer_once(state: WorkerState, kind: str) -> int | None:
    spec = JOBS.get(kind)
    if spec is None:
        log.warning("no job %r in this worker: its schedule does nothing", kind)
        return None
    return await defer_job(
        state.queue,
        state.engine,
        kind,
        args={},
        requested_by="schedule",
        dedupe=kind,
        queue_name=spec.queue,
    )


def register_schedules(state: WorkerState) -> None:
    for kind, cron in _crons(state).items():
        if not cron:
            continue
        per_se = kind in (SE_GC, SE_RECONCILE, SE_SCRUB)

        async def tick(timestamp: int, kind: str = kind, per_se: bool = per_se) -> None:
            if per_se:
                await defer_for_every_se(state, kind)
            else:
                await defer_once(state, kind)

        task: Any = state.queue.task(name=SCHEDULE_PREFIX + kind, queue="schedule")(tick)
        state.queue.periodic(cron=cron, periodic_id=kind)(task)

    async def lost(timestamp: int) -> None:
        await check_lost_runs(state)

    if state.settings.lost_check_cron:
        lost_task: Any = state.queue.task(name=LOST_CHECK, queue="schedule")(lost)
        state.queue.periodic(cron=state.settings.lost_check_cron, periodic_id="lost")(lost_task)
