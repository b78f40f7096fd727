"""Repair speed (issue 15): MB/s at which the job worker gives a dead SE's files their
second copy back (docs/repair.md).

Each row starts a whole system on local disk (tests/support/system.py: an admin, three
``rw`` SEs, an ingester, one job worker), stores ``--files`` permanent files of one size
(2 copies each), stops the SE holding the most copies for good, waits until the admin
sees it offline and its grace period (1 s) is over, then times from the ``repair.scan``
being queued until every file has two healthy copies on the two SEs left (read from the
catalog every 0.2 s). Repair moves the dead SE's share once: MB/s = bytes copied /
that time, including the scan and the per-file jobs. Every copied file is then
downloaded from its new SE and its SHA-256 compared.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/repair.py [--rows 64K:400:2,4M:40:2,4M:40:4]

A row is ``size:files:WK_REPAIR_CONCURRENCY``. All processes share this machine's CPUs
and disk (source and destination SEs are on the same filesystem).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from artstore.common.db import make_engine  # noqa: E402
from artstore.jobs.defer import defer_job  # noqa: E402
from artstore.jobs.queue import libpq_url, make_queue  # noqa: E402
from tests.support.database import TestDatabase  # noqa: E402
from tests.support.system import System  # noqa: E402

UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}
WORKER_ENV = {
    "WK_GC_CRON": "",
    "WK_RECONCILE_CRON": "",
    "WK_SCRUB_CRON": "",
    "WK_REPAIR_SCAN_CRON": "",
    "WK_PRUNE_CRON": "",
    "WK_OFFLINE_GRACE_SECONDS": "1",
}


@dataclass(frozen=True)
class Row:
    size: int
    files: int
    concurrency: int

    @classmethod
    def parse(cls, text: str) -> Row:
        size, files, conc = text.split(":")
        unit = UNITS.get(size[-1].upper(), 1)
        number = size[:-1] if size[-1].upper() in UNITS else size
        return cls(int(number) * unit, int(files), int(conc))


@dataclass
class Result:
    row: Row
    copied_files: int
    copied_bytes: int
    seconds: float

    @property
    def mb_s(self) -> float:
        return self.copied_bytes / 1e6 / self.seconds

    @property
    def files_s(self) -> float:
        return self.copied_files / self.seconds


def live_rows(db_url: str) -> dict[str, set[str]]:
    with psycopg.connect(libpq_url(db_url)) as conn:
        rows = conn.execute(
            "SELECT file_id::text, storage_element_id FROM catalog.files"
            " WHERE quarantined_at IS NULL"
        ).fetchall()
    out: dict[str, set[str]] = {}
    for file_id, se in rows:
        out.setdefault(file_id, set()).add(se)
    return out


def defer_scan(db_url: str) -> int:
    async def go() -> int:
        queue = make_queue(db_url, pool_size=1)
        engine = make_engine(db_url, pool_size=1)
        await queue.open_async()
        try:
            run_id = await defer_job(queue, engine, "repair.scan", args={}, requested_by="bench")
        finally:
            await queue.close_async()
            await engine.dispose()
        assert run_id is not None
        return run_id

    return asyncio.run(go())


def scan_summary(system: System, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    with system.admin.client(system.admin_token()) as c:
        while time.monotonic() < deadline:
            run = c.get(f"/api/v1/jobs/{run_id}").json()
            if run["state"] in ("succeeded", "failed", "cancelled"):
                return dict(run)
            time.sleep(0.1)
    raise TimeoutError(f"scan run {run_id} never ended")


def measure(row: Row, tmp: Path) -> Result:
    db = TestDatabase(f"bench_repair_{os.getpid()}")
    system = System(tmp / "sys", db)
    try:
        token = system.user_token()
        ses = [system.add_se("rw") for _ in range(3)]
        ig = system.start_ingester()
        sha: dict[str, str] = {}
        with httpx.Client(timeout=300) as c:
            for i in range(row.files):
                data = os.urandom(row.size)
                r = c.put(
                    f"{ig.url}/api/v1/files/upload",
                    params={"filename": f"b{i}.bin", "retention_policy": "permanent"},
                    content=data,
                    headers={"Authorization": f"Bearer {token}"},
                )
                r.raise_for_status()
                sha[r.json()["file_id"]] = hashlib.sha256(data).hexdigest()
        before = live_rows(db.url)
        dead = max(ses, key=lambda se: sum(se.id in v for v in before.values()))
        rest = {se.id for se in ses if se is not dead}
        moved = [f for f, v in before.items() if dead.id in v]
        dead.process.stop()
        with system.admin.client(system.admin_token()) as c:
            while c.get(f"/api/v1/storage-elements/{dead.id}").json()["status"] != "offline":
                time.sleep(0.1)
        worker = system.start_worker(**WORKER_ENV, WK_REPAIR_CONCURRENCY=str(row.concurrency))
        # Timed from the queueing of the scan that no longer counts the dead SE (its
        # grace period over; an earlier scan found nothing to do) until the last copy.
        while True:
            started = time.monotonic()
            summary = scan_summary(system, defer_scan(db.url))["summary"]
            if dead.id not in summary["counted_storage_elements"]:
                break
            time.sleep(0.2)
        while True:
            now = live_rows(db.url)
            if all(now[f] >= rest for f in moved):
                break
            time.sleep(0.2)
        seconds = time.monotonic() - started
        for f in moved:
            target = next(se for se in ses if se.id in rest and se.id in now[f] - before[f])
            with target.client() as c:
                body = c.get(f"/api/v1/files/{f}/download").content
            if hashlib.sha256(body).hexdigest() != sha[f]:
                raise SystemExit(f"copy of {f} on {target.id} does not verify")
        worker.stop()
        return Result(row, len(moved), len(moved) * row.size, seconds)
    finally:
        system.stop()
        db.drop()


def human(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="64K:400:2,4M:40:2,4M:40:4")
    args = parser.parse_args()
    rows = [Row.parse(r) for r in args.rows.split(",")]
    results = []
    for row in rows:
        with tempfile.TemporaryDirectory(prefix="bench-repair-") as tmp:
            results.append(measure(row, Path(tmp)))
            r = results[-1]
            print(f"done: {human(row.size)} x {row.files}: {r.mb_s:.1f} MB/s", flush=True)
    print()
    print(
        "| file size | files stored | copied (dead SE's share) | concurrency | seconds "
        "| MB/s | files/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {human(r.row.size)} | {r.row.files} | {r.copied_files} "
            f"({r.copied_bytes / 1e6:.1f} MB) | {r.row.concurrency} | {r.seconds:.2f} "
            f"| {r.mb_s:.1f} | {r.files_s:.1f} |"
        )


if __name__ == "__main__":
    main()
