"""Maintenance routes (architecture §5.5): reconcile, rebuild-index, gc, scrub, status."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import Conflict, ValidationFailed
from artstore.storage_element.maintenance import gc, rebuild, reconcile
from artstore.storage_element.state import Node

router = APIRouter(prefix="/api/v1/maintenance", tags=["maintenance"])

Operator = Annotated[Principal, Depends(RequireScope("storage:write"))]
Observer = Annotated[Principal, Depends(RequireScope("storage:read", "storage:write"))]


@router.post("/reconcile")
async def run_reconcile(
    node: Node,
    _: Operator,
    deep: Annotated[bool, Query(description="re-hash every blob")] = False,
) -> dict[str, Any]:
    return await reconcile.reconcile(node, deep=deep)


@router.post("/rebuild-index", status_code=202)
async def run_rebuild(node: Node, _: Operator) -> JSONResponse:
    job_id = rebuild.start_rebuild(node)
    return JSONResponse({"job_id": job_id}, status_code=202)


@router.post("/gc")
async def run_gc(
    node: Node,
    _: Operator,
    now: Annotated[
        datetime | None, Query(description="tests only (SE_ALLOW_CLOCK_OVERRIDE)")
    ] = None,
) -> dict[str, Any]:
    if now is not None and not node.settings.allow_clock_override:
        raise ValidationFailed("now= is accepted only with SE_ALLOW_CLOCK_OVERRIDE=true")
    result = await gc.collect(node, now)
    return {k: result[k] for k in ("expired", "reclaimed", "bytes_freed")}


@router.post("/scrub", status_code=202)
async def run_scrub(node: Node, _: Operator) -> dict[str, Any]:
    """Start a scrub pass now (the scrubber otherwise waits `SE_SCRUB_PASS_INTERVAL`
    between passes); a pass under way goes on. Answers at once: ``passes`` grows in
    ``status`` when the pass ends (the job worker's se.scrub waits for it)."""
    if node.settings.scrub_bytes_per_sec <= 0:
        raise Conflict("scrubbing is off on this SE (SE_SCRUB_BYTES_PER_SEC=0)")
    scrub = node.maintenance.scrub
    scrub.wake.set()
    return {"passes": scrub.passes, "position": scrub.position}


@router.get("/status")
async def status(node: Node, _: Observer) -> dict[str, Any]:
    m = node.maintenance
    await node.catalog.refused.load()
    return {
        "wal": {
            "pending": node.journal.pending,
            "segments": await asyncio.to_thread(node.journal.segment_count),
            "last_checkpoint_at": node.journal.last_checkpoint_at,
            "failed": node.journal.failed,
        },
        "recovery": {
            "set_aside": m.recovery.set_aside,
            "set_aside_total": m.recovery.set_aside_total,
            "last": m.recovery.last,
        },
        "catalog": {
            "enabled": node.catalog.enabled,
            "reachable": node.catalog.reachable,
            "owed_updates": len(node.catalog.owed),
            "last_error": None if node.catalog.reachable else node.catalog.last_error,
            # Rows PostgreSQL refused for their data (not owed; reconcile retries them).
            **node.catalog.refused.status(),
        },
        "gc": m.gc_last,
        "reconcile": m.reconcile_last,
        "scrub": {
            "position": m.scrub.position,
            "files_checked": m.scrub.files_checked,
            "mismatches": m.scrub.mismatches,
            "last_pass_at": m.scrub.last_pass_at,
            "passes": m.scrub.passes,
        },
        "rebuild": {
            "state": m.rebuild.state,
            "done": m.rebuild.done,
            "total": m.rebuild.total,
            "job_id": m.rebuild.job_id,
            "error": m.rebuild.error,
            "bad_attrs": m.rebuild.bad_attrs,
            "refused": m.rebuild.refused,
            "refused_file_ids": m.rebuild.refused_file_ids,
        },
        "quarantined": m.quarantined,
        "download_checksum_mismatches": m.download_mismatches,
        # The file index (architecture §5.8): trusted at start or rebuilt by a walk;
        # "filled" once every row knows its status (lists wait for it without a catalog).
        "index": {
            "trusted_at_start": node.index_stats.trusted,
            "rebuilds": node.index_stats.walks,
            "filled": node.index.filled.is_set(),
            "rows_read_by_fill": node.index_stats.filled,
            "used_bytes_pending": node.index_stats.sizes_owed,
        },
    }
