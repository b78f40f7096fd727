"""SQL of the job history (``jobs.runs``): every read and write of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from artstore.common.pagination import PageParams
from artstore.contracts.jobs import FINISHED, runs


@dataclass(frozen=True)
class RunRow:
    id: int
    kind: str
    state: str
    storage_element_id: str | None
    target: str | None
    args: dict[str, Any]
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    summary: dict[str, Any] | None
    error: str | None
    requested_by: str | None
    queue_job_id: int | None
    abort_requested: datetime | None
    retry_of: int | None


@dataclass(frozen=True)
class RunFilters:
    kind: str | None = None
    state: str | None = None
    storage_element_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _row(r: Row[Any]) -> RunRow:
    m = r._mapping
    return RunRow(**{name: m[name] for name in RunRow.__dataclass_fields__})


async def insert_queued(
    conn: AsyncConnection,
    kind: str,
    *,
    args: dict[str, Any],
    storage_element_id: str | None = None,
    target: str | None = None,
    requested_by: str | None = None,
    retry_of: int | None = None,
    state: str = "queued",
) -> int:
    run_id = await conn.scalar(
        insert(runs)
        .values(
            kind=kind,
            state=state,
            storage_element_id=storage_element_id,
            target=target,
            args=args,
            queued_at=func.now(),
            started_at=func.now() if state == "running" else None,
            attempts=1 if state == "running" else 0,
            requested_by=requested_by,
            retry_of=retry_of,
        )
        .returning(runs.c.id)
    )
    assert run_id is not None
    return int(run_id)


async def set_queue_job(conn: AsyncConnection, run_id: int, job_id: int) -> None:
    await conn.execute(update(runs).where(runs.c.id == run_id).values(queue_job_id=job_id))


async def delete_run(conn: AsyncConnection, run_id: int) -> None:
    await conn.execute(delete(runs).where(runs.c.id == run_id))


async def get(conn: AsyncConnection, run_id: int) -> RunRow | None:
    r = (await conn.execute(select(runs).where(runs.c.id == run_id))).first()
    return _row(r) if r is not None else None


async def by_queue_job(conn: AsyncConnection, job_id: int) -> RunRow | None:
    r = (
        await conn.execute(
            select(runs).where(runs.c.queue_job_id == job_id).order_by(runs.c.id.desc()).limit(1)
        )
    ).first()
    return _row(r) if r is not None else None


async def list_runs(
    conn: AsyncConnection, filters: RunFilters, page: PageParams
) -> tuple[list[RunRow], int]:
    """Newest first."""
    where = []
    if filters.kind is not None:
        where.append(runs.c.kind == filters.kind)
    if filters.state is not None:
        where.append(runs.c.state == filters.state)
    if filters.storage_element_id is not None:
        where.append(runs.c.storage_element_id == filters.storage_element_id)
    if filters.since is not None:
        where.append(runs.c.queued_at >= filters.since)
    if filters.until is not None:
        where.append(runs.c.queued_at < filters.until)
    total = await conn.scalar(select(func.count()).select_from(runs).where(*where))
    rows = await conn.execute(
        select(runs)
        .where(*where)
        .order_by(runs.c.queued_at.desc(), runs.c.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return [_row(r) for r in rows], int(total or 0)


async def mark_running(conn: AsyncConnection, run_id: int) -> bool:
    """queued → running (one more attempt); False when the run is no longer queued
    (cancelled meanwhile, or already ended)."""
    result = await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.state == "queued")
        .values(
            state="running",
            started_at=func.now(),
            finished_at=None,
            attempts=runs.c.attempts + 1,
        )
    )
    return result.rowcount == 1


async def _finish(conn: AsyncConnection, run_id: int, **values: Any) -> bool:
    result = await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.state.not_in(FINISHED))
        .values(finished_at=func.now(), **values)
    )
    return result.rowcount == 1


async def mark_succeeded(conn: AsyncConnection, run_id: int, summary: dict[str, Any]) -> bool:
    return await _finish(conn, run_id, state="succeeded", summary=summary, error=None)


async def mark_failed(
    conn: AsyncConnection, run_id: int, error: str, summary: dict[str, Any] | None = None
) -> bool:
    return await _finish(conn, run_id, state="failed", error=error, summary=summary)


async def mark_cancelled(conn: AsyncConnection, run_id: int, reason: str) -> bool:
    return await _finish(conn, run_id, state="cancelled", error=reason)


async def mark_requeued(conn: AsyncConnection, run_id: int, error: str) -> bool:
    """running → queued after a failed attempt that the queue retries."""
    result = await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.state == "running")
        .values(state="queued", error=error)
    )
    return result.rowcount == 1


async def request_abort(conn: AsyncConnection, run_id: int) -> bool:
    result = await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.state == "running")
        .values(abort_requested=func.now())
    )
    return result.rowcount == 1


async def abort_requested(conn: AsyncConnection, run_id: int) -> bool:
    value = await conn.scalar(select(runs.c.abort_requested).where(runs.c.id == run_id))
    return value is not None


async def running(conn: AsyncConnection) -> list[RunRow]:
    rows = await conn.execute(select(runs).where(runs.c.state == "running"))
    return [_row(r) for r in rows]


async def prune(conn: AsyncConnection, older_than: datetime) -> int:
    """Delete ended runs that ended before ``older_than``; how many."""
    result = await conn.execute(
        delete(runs).where(runs.c.state.in_(FINISHED), runs.c.finished_at < older_than)
    )
    return int(result.rowcount or 0)


async def ping(engine: AsyncEngine) -> None:
    """One round trip on the job history's table (readiness)."""
    async with engine.connect() as conn:
        await conn.execute(select(runs.c.id).limit(1))


async def latest_by_target(
    conn: AsyncConnection, kind: str, targets: list[str]
) -> dict[str, RunRow]:
    """The newest run of ``kind`` for each of ``targets`` that has one (a job that works
    on one thing, e.g. ``preview.make`` on a file, records it as the run's target)."""
    if not targets:
        return {}
    newest = (
        select(func.max(runs.c.id))
        .where(runs.c.kind == kind, runs.c.target.in_(targets))
        .group_by(runs.c.target)
    )
    stmt = select(runs).where(runs.c.id.in_(newest.scalar_subquery()))
    return {str(r.target): _row(r) for r in await conn.execute(stmt)}
