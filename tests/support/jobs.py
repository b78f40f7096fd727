"""Background jobs from a test: queue one as the admin or a schedule does
(artstore.jobs), a worker with every schedule off, and waiting for what a job does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from artstore.common.db import make_engine
from artstore.jobs.defer import defer_job
from artstore.jobs.queue import make_queue


def defer(database_url: str, kind: str, **args: Any) -> int:
    """The new run's id (``jobs.runs``); the job waits in the queue for a worker."""

    async def go() -> int:
        queue = make_queue(database_url, pool_size=1)
        engine = make_engine(database_url, pool_size=1)
        await queue.open_async()
        try:
            run_id = await defer_job(queue, engine, kind, args=args, requested_by="test")
        finally:
            await queue.close_async()
            await engine.dispose()
        assert run_id is not None
        return run_id

    return asyncio.run(go())


# A worker that runs only what a test queues: every schedule off.
QUIET_SCHEDULES: dict[str, str] = {
    "WK_GC_CRON": "",
    "WK_RECONCILE_CRON": "",
    "WK_SCRUB_CRON": "",
    "WK_REPAIR_SCAN_CRON": "",
    "WK_PRUNE_CRON": "",
}


def wait_for(what: str, found: Callable[[], Any], limit: float = 120.0) -> Any:
    """``found()``'s first truthy value, polled until ``limit`` seconds have passed."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(0.3)
    raise AssertionError(f"never: {what}")
