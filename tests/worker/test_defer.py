"""``defer_job`` against the real queue (no worker runs here): the history row and the
queue job, the queueing lock, and the rows the admin's list reads (issue 15)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import procrastinate
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from artstore.common.db import make_engine
from artstore.common.pagination import PageParams
from artstore.jobs import repository
from artstore.jobs.defer import defer_job
from artstore.jobs.queue import make_queue
from artstore.jobs.repository import RunFilters
from tests.support.database import TestDatabase


@pytest.fixture
async def queue_and_engine(
    database: TestDatabase,
) -> AsyncIterator[tuple[procrastinate.App, AsyncEngine]]:
    queue = make_queue(database.url, pool_size=1)
    engine = make_engine(database.url, pool_size=1)
    await queue.open_async()
    try:
        yield queue, engine
    finally:
        await queue.close_async()
        await engine.dispose()


async def test_a_deferred_job_is_queued_with_its_history_row(
    queue_and_engine: tuple[procrastinate.App, AsyncEngine],
) -> None:
    queue, engine = queue_and_engine
    kind = f"test.defer.{uuid.uuid4().hex[:8]}"
    run_id = await defer_job(
        queue, engine, kind, args={"n": 1}, storage_element_id="se-a", target="f1",
        requested_by="alice",
    )  # fmt: skip
    assert run_id is not None
    async with engine.connect() as conn:
        run = await repository.get(conn, run_id)
    assert run is not None and run.state == "queued" and run.attempts == 0
    assert (run.kind, run.args, run.storage_element_id, run.target, run.requested_by) == (
        kind, {"n": 1}, "se-a", "f1", "alice",
    )  # fmt: skip
    assert run.queue_job_id is not None
    pq_jobs = await queue.job_manager.list_jobs_async(id=run.queue_job_id)
    (pq_job,) = list(pq_jobs)
    assert pq_job.task_name == kind
    assert pq_job.task_kwargs == {"run_id": run_id, "n": 1}
    async with engine.connect() as conn:
        rows, total = await repository.list_runs(
            conn, RunFilters(kind=kind), PageParams(limit=10, offset=0)
        )
    assert total == 1 and [r.id for r in rows] == [run_id]


async def test_the_same_dedupe_key_queues_one_job_until_it_starts(
    queue_and_engine: tuple[procrastinate.App, AsyncEngine],
) -> None:
    queue, engine = queue_and_engine
    kind = f"test.dedupe.{uuid.uuid4().hex[:8]}"
    first = await defer_job(queue, engine, kind, args={}, dedupe=kind)
    second = await defer_job(queue, engine, kind, args={}, dedupe=kind)
    other = await defer_job(queue, engine, kind, args={}, dedupe=kind + ":other")
    assert first is not None and other is not None and second is None
    async with engine.connect() as conn:
        rows, total = await repository.list_runs(
            conn, RunFilters(kind=kind), PageParams(limit=10, offset=0)
        )
    # The refused duplicate left no history row behind.
    assert total == 2 and {r.id for r in rows} == {first, other}
