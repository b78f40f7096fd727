"""Job functions and their registration.

A job is ``async def fn(ctx: JobContext, **kwargs) -> dict[str, Any]`` decorated with
:func:`job`; its kind (artstore.contracts.jobs) is its procrastinate task name. The
worker imports :data:`TASK_MODULES` at start, then registers every job on its queue
(tasks/runner.py wraps each one so that its run is recorded in ``jobs.runs``): the
returned dict is the run's summary, an exception fails it with its message, an abort
(cancel) ends it cancelled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from artstore.contracts.jobs import KIND_MAX

JobFn = Callable[..., Awaitable[dict[str, Any]]]
F = TypeVar("F", bound=JobFn)

# The modules whose @job functions the worker runs.
TASK_MODULES: tuple[str, ...] = (
    "artstore.worker.tasks.se",
    "artstore.worker.tasks.prune",
    "artstore.worker.repair.tasks",
    "artstore.worker.tasks.previews",
)


@dataclass(frozen=True)
class JobSpec:
    kind: str
    fn: JobFn
    queue: str
    # Further attempts after a failed one (0 = none); also after a worker was lost.
    retry: int


JOBS: dict[str, JobSpec] = {}


class JobAborted(Exception):
    """Raise it from a job that saw ``ctx.should_abort()``: the run ends cancelled."""


def job(kind: str, *, queue: str = "default", retry: int = 0) -> Callable[[F], F]:
    """Register ``fn`` as the job ``kind``; ``fn`` itself is returned unchanged (a test
    may call it with a JobContext of its own)."""
    if not kind or len(kind) > KIND_MAX:
        raise ValueError(f"job kind must be 1..{KIND_MAX} characters: {kind!r}")
    if retry < 0:
        raise ValueError("retry must be >= 0")

    def register(fn: F) -> F:
        if kind in JOBS and JOBS[kind].fn is not fn:
            raise ValueError(f"job {kind!r} is registered twice")
        JOBS[kind] = JobSpec(kind, fn, queue, retry)
        return fn

    return register
