"""Repair (docs/repair.md): ``scan`` finds the files with fewer healthy copies than the
copies policy asks for and queues one ``repair.file`` each; ``repair_file`` brings one
file back to its count, one worker at a time per file.

Repair only ever adds copies. It never deletes, so the last healthy copy of a file is
never at risk; a copy it could not finish is rolled back by the SE it was going to."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final

from artstore.common.errors import ArtStoreError
from artstore.common.redact import describe
from artstore.contracts.jobs import REPAIR_FILE
from artstore.jobs.defer import defer_job
from artstore.worker.context import JobContext
from artstore.worker.repair import repository
from artstore.worker.repair.copier import (
    DestinationFailed,
    Endpoint,
    SourceFailed,
    Throttle,
    copy_file,
    throttle,
)
from artstore.worker.repair.metrics import RepairMetrics, repair_metrics
from artstore.worker.repair.policy import Fleet, Plan, judge, ref
from artstore.worker.repair.repository import CopyRow, SeRow
from artstore.worker.tasks import JobAborted

log = logging.getLogger("artstore.worker.repair")

QUEUE: Final = "repair"
# Attempts recorded in a run's summary at most (a long list helps nobody).
FAILURES_KEPT: Final = 20


def metrics_of(ctx: JobContext) -> RepairMetrics:
    return repair_metrics(ctx.metrics_registry)


async def load_fleet(ctx: JobContext) -> Fleet:
    async with ctx.engine.connect() as conn:
        rows = await repository.storage_elements(conn, ctx.settings.offline_grace_seconds)
    return Fleet.of(rows, ctx.settings.permanent_copies)


# -- scan ---------------------------------------------------------------------------------
async def scan(ctx: JobContext) -> dict[str, Any]:
    """Every live file against the policy, a page of the catalog at a time."""
    fleet = await load_fleet(ctx)
    counted = fleet.counted
    totals = {
        "scanned": 0,
        "under_replicated": 0,
        "deferred": 0,
        "already_queued": 0,
        "unrecoverable": 0,
        "short_of_policy": 0,
    }
    after: str | None = None
    while True:
        if ctx.should_abort():
            raise JobAborted("repair.scan cancelled")
        async with ctx.engine.connect() as conn:
            page = await repository.scan_batch(conn, counted, after, ctx.settings.repair_scan_batch)
        if not page:
            break
        after = page[-1].file_id
        for f in page:
            totals["scanned"] += 1
            if f.status != "active":
                continue  # deleted or expired: owed nothing
            if f.healthy < fleet.configured(f.retention_policy):
                totals["short_of_policy"] += 1
            if f.healthy >= fleet.wanted(f.retention_policy):
                continue
            totals["under_replicated"] += 1
            if f.healthy == 0:
                totals["unrecoverable"] += 1  # nothing to copy from (yet)
                continue
            run_id = await defer_job(
                ctx.queue,
                ctx.engine,
                REPAIR_FILE,
                args={"file_id": f.file_id, "prefer_storage_element_id": None},
                target=f.file_id,
                requested_by="repair.scan",
                dedupe=f.file_id,
                queue_name=QUEUE,
            )
            totals["deferred" if run_id is not None else "already_queued"] += 1
    metrics = metrics_of(ctx)
    metrics.under_replicated.set(totals["short_of_policy"])
    metrics.unrecoverable.set(totals["unrecoverable"])
    return {
        **totals,
        "counted_storage_elements": counted,
        "rw_online": fleet.rw_online,
        "wanted_permanent": fleet.wanted("permanent"),
    }


# -- one file -----------------------------------------------------------------------------
@dataclass
class Outcome:
    file_id: str
    result: str = "nothing to do"
    wanted: int = 0
    healthy_before: int = 0
    copied_to: list[str] = field(default_factory=list)
    copied_from: list[str] = field(default_factory=list)
    bytes: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    def failed(self, step: str, storage_id: str, exc: BaseException) -> None:
        if len(self.failures) < FAILURES_KEPT:
            self.failures.append(
                {"step": step, "storage_element_id": storage_id, "error": describe(exc)}
            )

    def summary(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "result": self.result,
            "wanted": self.wanted,
            "healthy_before": self.healthy_before,
            "copied_to": self.copied_to,
            "copied_from": self.copied_from,
            "bytes": self.bytes,
            "failures": self.failures,
        }


async def repair_file(
    ctx: JobContext, file_id: str, prefer_storage_element_id: str | None = None
) -> dict[str, Any]:
    """Bring ``file_id`` to its policy's count. Idempotent: under the file's lock the
    copies are judged again first, so a second worker (or a repeated job) finds nothing
    left to do. ``prefer_storage_element_id``: the destination to try first (a restore
    of a quarantined copy to its SE)."""
    out = Outcome(file_id)
    async with repository.file_lock(ctx.engine, file_id):
        fleet = await load_fleet(ctx)
        async with ctx.engine.connect() as conn:
            rows = await repository.copies(conn, file_id)
        plan = judge(rows, fleet)
        out.wanted, out.healthy_before = plan.wanted, len(plan.healthy)
        if plan.speaker is None:
            out.result = "no copy"
        elif plan.speaker.status != "active":
            out.result = f"file is {plan.speaker.status}: owed no copies"
        elif plan.needed > 0:
            await _add_copies(ctx, fleet, plan, prefer_storage_element_id, out)
    log.info("repair of %s: %s", file_id, out.result, extra={"fields": out.summary()})
    return out.summary()


async def _add_copies(
    ctx: JobContext, fleet: Fleet, plan: Plan, prefer: str | None, out: Outcome
) -> None:
    assert plan.speaker is not None
    sources = plan.sources(fleet)
    if not sources:
        out.result = "no healthy copy can be read now"
        return
    pace = throttle(ctx.settings.repair_bytes_per_second, ctx.settings.repair_concurrency)
    metrics = metrics_of(ctx)
    taken = set(plan.holders)
    made = 0
    unreadable = False
    while made < plan.needed:
        if ctx.should_abort():
            raise JobAborted("repair cancelled")
        dests = fleet.destinations(plan.speaker.retention_policy, plan.speaker.size, taken, prefer)
        if not dests:
            break
        dest = dests[0]
        taken.add(dest.storage_id)  # whatever happens, not this SE again in this run
        try:
            source = await _copy_from_any(
                ctx, fleet, sources, plan.speaker, dest, pace, metrics, out
            )
        except DestinationFailed as exc:
            metrics.copies.labels("failed").inc()
            out.failed("write", dest.storage_id, exc)
            continue
        if source is None:
            unreadable = True  # no source could be read: another destination won't help
            break
        made += 1
        metrics.copies.labels("made").inc()
        out.copied_to.append(dest.storage_id)
        out.copied_from.append(source)
    if made == plan.needed:
        out.result = "repaired"
    elif unreadable:
        out.result = "no healthy copy could be read"
    elif made:
        out.result = "partly repaired: no more eligible storage elements"
    elif not out.failures:
        out.result = "no eligible storage element for a new copy"
    else:
        out.result = "not repaired"


async def _copy_from_any(
    ctx: JobContext,
    fleet: Fleet,
    sources: list[CopyRow],
    speaker: CopyRow,
    dest: SeRow,
    pace: Throttle,
    metrics: RepairMetrics,
    out: Outcome,
) -> str | None:
    """One new copy on ``dest`` from the first source that works; its SE id, or None
    when none could be read. DestinationFailed when ``dest`` failed."""

    def counted(n: int) -> None:
        out.bytes += n
        metrics.repair_bytes.inc(n)

    for source in sources:
        source_se = ref(fleet.ses[source.storage_element_id])
        try:
            source_auth = await ctx.se_headers(source_se.storage_id)
            # The copy's own metadata (its attr): what the new copy is written with.
            meta = await ctx.se_client.get_file(source_se, out.file_id, source_auth)
        except ArtStoreError as exc:
            out.failed("read", source_se.storage_id, exc)
            continue
        if meta is None or meta.checksum != speaker.checksum or meta.status != "active":
            continue  # the catalog was behind this SE
        try:
            dest_auth = await ctx.se_headers(dest.storage_id)
        except ArtStoreError as exc:
            raise DestinationFailed(describe(exc)) from exc
        try:
            async with pace.slots:
                await copy_file(
                    ctx.se_client,
                    Endpoint(source_se, source_auth),
                    Endpoint(ref(dest), dest_auth),
                    meta,
                    pace,
                    counted,
                )
        except SourceFailed as exc:
            out.failed("read", source_se.storage_id, exc)
            continue
        return source_se.storage_id
    return None
