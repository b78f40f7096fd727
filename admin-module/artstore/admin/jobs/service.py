"""The rules of job history, cancel and retry; SQL in artstore.jobs.repository."""

from __future__ import annotations

import procrastinate
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from artstore.admin.audit.service import Actor, Entry, record
from artstore.common.errors import Conflict, NotFound, UpstreamUnavailable
from artstore.common.pagination import PageParams
from artstore.jobs import repository
from artstore.jobs.defer import defer_job
from artstore.jobs.repository import RunFilters, RunRow


def _missing(run_id: int) -> NotFound:
    return NotFound(f"job {run_id} not found", details={"id": run_id})


def _queue(queue: procrastinate.App | None) -> procrastinate.App:
    if queue is None:
        raise UpstreamUnavailable("the job queue is not open")
    return queue


async def search(
    session: AsyncSession, filters: RunFilters, page: PageParams
) -> tuple[list[RunRow], int]:
    async with session.begin():
        return await repository.list_runs(await session.connection(), filters, page)


async def get(session: AsyncSession, run_id: int) -> RunRow:
    async with session.begin():
        row = await repository.get(await session.connection(), run_id)
    if row is None:
        raise _missing(run_id)
    return row


async def cancel(
    session: AsyncSession, queue: procrastinate.App | None, actor: Actor, run_id: int
) -> RunRow:
    """queued → cancelled at once; running → abort asked (the job stops at its next
    check and is then recorded cancelled); an ended run → 409."""
    q = _queue(queue)
    async with session.begin():
        conn = await session.connection()
        row = await repository.get(conn, run_id)
        if row is None:
            raise _missing(run_id)
        if row.state not in ("queued", "running"):
            raise Conflict(f"job {run_id} is {row.state}", details={"state": row.state})
        done = "abort_requested"
        if row.state == "queued":
            # Not picked up yet: the queue drops it (todo → cancelled).
            taken_back = row.queue_job_id is None or await q.job_manager.cancel_job_by_id_async(
                row.queue_job_id
            )
            if taken_back and await repository.mark_cancelled(
                conn, run_id, f"cancelled by {actor.sub}"
            ):
                done = "cancelled"
        if done != "cancelled":
            await repository.request_abort(conn, run_id)
            if row.queue_job_id is not None:
                await q.job_manager.cancel_job_by_id_async(row.queue_job_id, abort=True)
        await record(
            session,
            actor,
            Entry("job.cancel", "job", str(run_id), details={"kind": row.kind, "result": done}),
        )
        after = await repository.get(conn, run_id)
    assert after is not None
    return after


async def retry(
    session: AsyncSession,
    engine: AsyncEngine,
    queue: procrastinate.App | None,
    actor: Actor,
    run_id: int,
) -> RunRow:
    """A failed or cancelled run → a new queued run of the same kind and arguments."""
    q = _queue(queue)
    row = await get(session, run_id)
    if row.state not in ("failed", "cancelled"):
        raise Conflict(
            f"job {run_id} is {row.state}: only failed or cancelled jobs are retried",
            details={"state": row.state},
        )
    new_id = await defer_job(
        q,
        engine,
        row.kind,
        args=row.args,
        storage_element_id=row.storage_element_id,
        target=row.target,
        requested_by=actor.sub,
        retry_of=row.id,
    )
    assert new_id is not None  # no queueing lock: never refused as a duplicate
    async with session.begin():
        await record(
            session,
            actor,
            Entry("job.retry", "job", str(run_id), details={"kind": row.kind, "new_id": new_id}),
        )
    return await get(session, new_id)
