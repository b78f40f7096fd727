"""Jobs the worker tests run (``WK_EXTRA_TASK_MODULES=tests.worker.jobs_for_tests``):
one that raises, one that waits for a file (to be cancelled or killed mid-run)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from artstore.worker.context import JobContext
from artstore.worker.tasks import job


@job("test.fail")
async def fail(ctx: JobContext, *, message: str) -> dict[str, Any]:
    raise RuntimeError(message)


@job("test.wait", retry=1)
async def wait(ctx: JobContext, *, started: str, release: str) -> dict[str, Any]:
    """Writes ``started`` (with its run id), then waits until ``release`` exists or
    a cancel is asked."""
    Path(started).write_text(str(ctx.run_id))
    while not Path(release).exists():
        if ctx.should_abort():
            return {"stopped": "abort"}
        await asyncio.sleep(0.1)
    return {"released": True, "run_id": ctx.run_id}
