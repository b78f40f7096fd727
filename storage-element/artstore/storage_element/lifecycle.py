"""Start and stop of a storage element: recovery, index, background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from artstore.common.errors import Conflict
from artstore.common.health import CheckResult, HealthCheck
from artstore.storage_element.backends.s3 import S3Backend
from artstore.storage_element.catalog.errors import safe_reason
from artstore.storage_element.files import index_start
from artstore.storage_element.maintenance import gc, scrub
from artstore.storage_element.maintenance.reconcile import reconcile
from artstore.storage_element.state import SEState
from artstore.storage_element.wal.recovery import SHOWN_SET_ASIDE, RecoveryReport, resolve

log = logging.getLogger("artstore.storage_element")

CHECKPOINT_INTERVAL = 60.0


async def start(node: SEState) -> list[asyncio.Task[None]]:
    s = node.settings
    await asyncio.to_thread(node.backend.prepare)
    await asyncio.to_thread(os.makedirs, s.wal_dir, exist_ok=True)
    report = await asyncio.to_thread(resolve, node.backend, s.wal_dir)
    _note_set_aside(node, report)
    await asyncio.to_thread(node.modes.load, s.mode)
    # The file index and the space counters: at once after a clean stop, else one walk.
    await index_start.start(node, report.paths)
    await asyncio.to_thread(node.journal.open_new_segment)
    for txn, file_id in report.owed.items():
        await node.journal.owe(txn, file_id)
        node.catalog.owed[txn] = file_id
    await node.journal.checkpoint()
    if node.catalog.enabled and node.catalog.owed:
        await node.catalog.replay()
    node.recovered = True
    log.info(
        "storage element ready",
        extra={
            "fields": {
                "storage_id": s.id,
                "mode": node.modes.current,
                "files": node.capacity.file_count,
                "index": "trusted" if node.index_stats.trusted else "rebuilt",
                "wal_records": report.records,
                "owed_catalog_updates": len(node.catalog.owed),
                "wal_records_set_aside": len(report.set_aside),
            }
        },
    )
    await asyncio.to_thread(scrub.load_position, node)
    loop = asyncio.get_running_loop()
    return [
        loop.create_task(node.catalog.run_forever()),
        loop.create_task(_checkpoint_forever(node)),
        loop.create_task(scrub.scrub_forever(node)),
        loop.create_task(_every(node.settings.gc_interval, "gc", lambda: gc.collect(node))),
        loop.create_task(
            _every(node.settings.reconcile_interval, "reconcile", lambda: reconcile(node))
        ),
    ]


def _note_set_aside(node: SEState, report: RecoveryReport) -> None:
    state = node.maintenance.recovery
    state.set_aside = len(report.set_aside)
    state.set_aside_total = report.set_aside_total
    # The reason and where, not the record itself: it may be large (the file has it all).
    state.last = [
        {k: v for k, v in entry.items() if k != "record"}
        for entry in report.set_aside[-SHOWN_SET_ASIDE:]
    ]


async def _every(interval: float, job: str, run: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """Run a maintenance job periodically; a run already going (409) is simply skipped."""
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await run()
        except Conflict:
            continue
        except Exception:
            log.exception("periodic %s failed", job)


async def _checkpoint_forever(node: SEState) -> None:
    while True:
        await asyncio.sleep(CHECKPOINT_INTERVAL)
        try:
            await node.journal.checkpoint()
        except OSError:
            log.exception("journal checkpoint failed")


async def stop(node: SEState, tasks: list[asyncio.Task[None]]) -> None:
    tasks = [*tasks, *node.tasks]
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await node.journal.close()
    await asyncio.to_thread(index_start.close, node)


def _probe_writable(path: str) -> None:
    probe = os.path.join(path, f".probe-{os.getpid()}")
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"ok")
    finally:
        os.close(fd)
        os.unlink(probe)


def health_checks(node: SEState) -> dict[str, HealthCheck]:
    async def backend() -> CheckResult:
        if isinstance(node.backend, S3Backend):
            # The blobs live in the bucket: ask it (the local tmp/ says nothing about it).
            try:
                await asyncio.to_thread(node.backend.check_ready)
            except Exception as exc:  # botocore's errors are not OSErrors
                return CheckResult("fail", f"bucket not reachable: {exc or type(exc).__name__}")
            return CheckResult("ok")
        try:
            await asyncio.to_thread(_probe_writable, str(node.layout.tmp_dir))
        except OSError as exc:
            return CheckResult("fail", f"data directory not writable: {exc}")
        return CheckResult("ok")

    async def wal() -> CheckResult:
        if node.journal.failed:
            return CheckResult(
                "fail", f"journal failed, writes refused until restart: {node.journal.failure}"
            )
        try:
            await asyncio.to_thread(_probe_writable, str(node.settings.wal_dir))
        except OSError as exc:
            return CheckResult("fail", f"journal directory not writable: {exc}")
        return CheckResult("ok")

    async def catalog() -> CheckResult:
        repo = node.catalog.repo
        if repo is None:
            return CheckResult("degraded", "no DATABASE_URL: catalog disabled")
        try:
            await asyncio.wait_for(repo.ping(), node.settings.catalog_timeout)
        except Exception as exc:
            # The class name only: a driver's message may quote SQL or a parameter.
            return CheckResult("degraded", f"catalog unreachable: {safe_reason(exc)}")
        # Rows refused for their data are reported, not a degradation: every other
        # update lands (they are counted in maintenance status and /metrics).
        notes = []
        if owed := len(node.catalog.owed):
            notes.append(f"{owed} updates owed")
        if refused := len(node.catalog.refused):
            notes.append(f"{refused} rows refused for their data")
        return CheckResult("ok", "; ".join(notes) or None)

    async def recovery() -> CheckResult:
        return CheckResult("ok") if node.recovered else CheckResult("fail", "recovery running")

    return {"backend": backend, "wal": wal, "catalog": catalog, "recovery": recovery}
