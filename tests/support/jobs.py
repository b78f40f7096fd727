"""Queue a background job from a test, as the admin or a schedule does (artstore.jobs)."""

from __future__ import annotations

import asyncio
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
