"""Scheduled maintenance of each SE (architecture §10): the SE does the work through its
maintenance API; the worker asks, and the SE's answer is the run's summary."""

from __future__ import annotations

from typing import Any

from artstore.common.errors import NotFound
from artstore.contracts.jobs import SE_GC, SE_RECONCILE, SE_SCRUB
from artstore.worker.context import JobContext
from artstore.worker.tasks import job

# The SE's maintenance action each job asks for.
ACTIONS = {SE_GC: "gc", SE_RECONCILE: "reconcile", SE_SCRUB: "scrub"}


async def _maintain(ctx: JobContext, kind: str, storage_element_id: str) -> dict[str, Any]:
    se = ctx.registry.get(storage_element_id)
    if se is None:
        await ctx.registry.refresh()
        se = ctx.registry.get(storage_element_id)
    if se is None:
        raise NotFound(f"storage element {storage_element_id!r} is not registered")
    answer = await ctx.se_client.maintenance(
        se, ACTIONS[kind], await ctx.se_headers(storage_element_id)
    )
    return {"storage_element_id": storage_element_id, "result": answer}


# retry=1: an SE that restarts during the call is asked again once.
@job(SE_GC, queue="maintenance", retry=1)
async def se_gc(ctx: JobContext, *, storage_element_id: str) -> dict[str, Any]:
    return await _maintain(ctx, SE_GC, storage_element_id)


@job(SE_RECONCILE, queue="maintenance", retry=1)
async def se_reconcile(ctx: JobContext, *, storage_element_id: str) -> dict[str, Any]:
    return await _maintain(ctx, SE_RECONCILE, storage_element_id)


@job(SE_SCRUB, queue="maintenance", retry=1)
async def se_scrub(ctx: JobContext, *, storage_element_id: str) -> dict[str, Any]:
    return await _maintain(ctx, SE_SCRUB, storage_element_id)
