"""Scheduled maintenance of each SE (architecture §10): the SE does the work through its
maintenance API; the worker asks, and the SE's answer is the run's summary."""

from __future__ import annotations

import asyncio
from typing import Any

from artstore.common.errors import NotFound
from artstore.common.registry import StorageElementRef
from artstore.contracts.jobs import SE_GC, SE_RECONCILE, SE_SCRUB
from artstore.worker.context import JobContext
from artstore.worker.tasks import job

# The SE's maintenance action each job asks for.
ACTIONS = {SE_GC: "gc", SE_RECONCILE: "reconcile", SE_SCRUB: "scrub"}


# How often se.scrub reads the SE's status while its pass runs.
SCRUB_POLL_SECONDS = 2.0


async def _se(ctx: JobContext, storage_element_id: str) -> StorageElementRef:
    se = ctx.registry.get(storage_element_id)
    if se is None:
        await ctx.registry.refresh()
        se = ctx.registry.get(storage_element_id)
    if se is None:
        raise NotFound(f"storage element {storage_element_id!r} is not registered")
    return se


async def _maintain(ctx: JobContext, kind: str, storage_element_id: str) -> dict[str, Any]:
    se = await _se(ctx, storage_element_id)
    answer = await ctx.se_client.maintenance(
        se, ACTIONS[kind], await ctx.se_headers(storage_element_id)
    )
    return {"storage_element_id": storage_element_id, "result": answer}


async def _scrub(ctx: JobContext, storage_element_id: str) -> dict[str, Any]:
    """The SE scrubs continuously at its own rate; this asks it to start a pass now and
    waits until the pass under way (or the one it starts) ends: ``passes`` grows."""
    se = await _se(ctx, storage_element_id)
    started = await ctx.se_client.maintenance(se, "scrub", await ctx.se_headers(storage_element_id))
    before = int(started.get("passes", 0))
    while True:
        if ctx.should_abort():
            return {"storage_element_id": storage_element_id, "stopped": "cancelled"}
        await asyncio.sleep(SCRUB_POLL_SECONDS)
        status = await ctx.se_client.maintenance(
            se, "status", await ctx.se_headers(storage_element_id)
        )
        scrub = dict(status.get("scrub") or {})
        if int(scrub.get("passes", 0)) > before:
            return {"storage_element_id": storage_element_id, "result": scrub}


# retry=1: an SE that restarts during the call is asked again once.
@job(SE_GC, queue="maintenance", retry=1)
async def se_gc(ctx: JobContext, *, storage_element_id: str) -> dict[str, Any]:
    return await _maintain(ctx, SE_GC, storage_element_id)


@job(SE_RECONCILE, queue="maintenance", retry=1)
async def se_reconcile(ctx: JobContext, *, storage_element_id: str) -> dict[str, Any]:
    return await _maintain(ctx, SE_RECONCILE, storage_element_id)


@job(SE_SCRUB, queue="maintenance", retry=1)
async def se_scrub(ctx: JobContext, *, storage_element_id: str) -> dict[str, Any]:
    return await _scrub(ctx, storage_element_id)
