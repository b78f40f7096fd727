"""One storage element, small files: PUT then GET of 4 KiB at concurrency 1 and 16.

A quick loop for work on the SE's small-file path (issue 7), where ``bench/run`` takes
minutes: one SE as a real process (local disk, catalog on ``--database-url`` or none),
a stand-in token issuer, the same load client as ``bench/run``. Prints one table (ops/s,
p50/p99 ms, SE and PostgreSQL CPU per operation); ``--py-spy`` records the SE during the
c16 PUT batch and prints its top frames.

    .venv/bin/python bench/se_small.py --database-url postgresql://postgres@127.0.0.1/postgres

Everything it starts and writes is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    AnonymousSeaweed,
    Job,
    Payloads,
    Profiler,
    get_job,
    p50_p99_ms,
    postgres_cpu,
    process_cpu,
    put_job,
    run_batch,
)
from tests.support.database import TestDatabase  # noqa: E402
from tests.support.issuer import TestIssuer  # noqa: E402
from tests.support.process import ServiceProcess, free_port  # noqa: E402

KiB = 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default="", help="a scratch database is made on it")
    ap.add_argument("--count", type=int, default=2000, help="objects per c16 batch")
    ap.add_argument("--size", type=int, default=4 * KiB)
    ap.add_argument("--py-spy", default=None)
    ap.add_argument("--seaweed", action="store_true", help="also SeaweedFS S3 (fsync'd bucket)")
    ap.add_argument("--on-cpu", action="store_true", help="py-spy: on-CPU samples only")
    ap.add_argument("--env", action="append", default=[], help="extra SE setting NAME=VALUE")
    args = ap.parse_args()
    (ROOT / ".artstore").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="se-small-", dir=ROOT / ".artstore"))
    issuer = TestIssuer()
    db = None
    url = ""
    if args.database_url:
        os.environ["TEST_DATABASE_URL"] = args.database_url
        db = TestDatabase(f"sesmall{uuid.uuid4().hex[:6]}")
        url = db.url
    env = {
        "SE_ID": "se-small",
        "SE_MODE": "edit",
        "SE_DATA_DIR": str(work / "data"),
        "SE_RESERVE_BYTES": "0",
        "DATABASE_URL": url,
        "JWKS_URL": issuer.jwks_url,
        "JWT_ISSUER": "artstore-test",
        "JWT_AUDIENCE": "artstore",
        "LOG_LEVEL": "WARNING",
    }
    for item in args.env:
        k, _, v = item.partition("=")
        env[k] = v
    se = ServiceProcess("storage-element", env, free_port(), work / "se.log")
    payloads = Payloads(block_size=max(args.size, 64 * KiB))
    rows: list[dict[str, Any]] = []
    top: dict[str, Any] = {}
    try:
        se.start()
        assert se.proc is not None
        proc = psutil.Process(se.proc.pid)
        headers = {"Authorization": f"Bearer {issuer.token()}"}
        port = int(se.url.rsplit(":", 1)[1])

        def se_put(i: int) -> Job:
            path = f"/api/v1/files?filename=b{i}.bin"
            return put_job(payloads, i, args.size, path, headers, "POST", 201)

        def se_get(body: bytes) -> Job:
            path = f"/api/v1/files/{json.loads(body)['file_id']}/download"
            return get_job(path, headers, args.size)

        run_batch("127.0.0.1", port, [se_put(i) for i in range(50)], 4)  # warm-up
        base = 1000
        for conc, count in ((1, max(args.count // 4, 100)), (16, args.count)):
            jobs = [se_put(base + i) for i in range(count)]
            base += count
            prof = None
            if args.py_spy and conc == 16:
                prof = Profiler(args.py_spy, proc.pid, work / "se-put.txt", args.on_cpu)
            c0, p0 = process_cpu(proc), postgres_cpu()
            res = run_batch("127.0.0.1", port, jobs, conc)
            c1, p1 = process_cpu(proc), postgres_cpu()
            if prof is not None:
                top = prof.finish(25)
            rows.append(_row("PUT", conc, res, (c1 - c0), (p1 - p0)))
            ids = [r for r in res.results if r]
            c0, p0 = process_cpu(proc), postgres_cpu()
            res = run_batch("127.0.0.1", port, [se_get(b) for b in ids], conc)
            c1, p1 = process_cpu(proc), postgres_cpu()
            rows.append(_row("GET", conc, res, (c1 - c0), (p1 - p0)))
        metrics = httpx.get(f"{se.url}/metrics").text
        wanted = ("group_commits_total", "group_commit_files_total", "wal_fsyncs_total")
        for line in metrics.splitlines():
            if line.startswith("artstore_storage_element_") and line.split()[0].endswith(wanted):
                print(line)
        if args.seaweed:
            rows += _seaweed_rows(work, payloads, args.size, args.count)
        print(
            f"{'target':8} {'op':4} {'conc':>4} {'ops':>5} {'ops/s':>8} {'p50 ms':>7}"
            f" {'p99 ms':>7} {'srv cpu ms/op':>13} {'PG cpu ms/op':>12}"
        )
        for r in rows:
            print(
                f"{r.get('target', 'SE'):8} {r['op']:4} {r['conc']:>4} {r['ops']:>5}"
                f" {r['ops_s']:>8.1f} {r['p50']:>7.1f} {r['p99']:>7.1f}"
                f" {r['se_cpu']:>13.2f} {r['pg_cpu']:>12.2f}"
            )
        if args.py_spy:
            print(json.dumps(top, indent=1))
    finally:
        se.stop()
        issuer.close()
        if db is not None:
            db.drop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _seaweed_rows(work: Path, payloads: Payloads, size: int, count: int) -> list[dict[str, Any]]:
    weed = AnonymousSeaweed(bucket="bench", fsync=True)
    shutil.rmtree(weed.root, ignore_errors=True)
    weed.root = Path(tempfile.mkdtemp(prefix="weed-", dir=work))
    weed.start()
    rows = []
    try:
        assert weed.proc is not None
        proc = psutil.Process(weed.proc.pid)
        port = weed.ports["s3"]

        def s3_put(i: int) -> Job:
            return put_job(payloads, i, size, f"/bench/{i}", {})

        run_batch("127.0.0.1", port, [s3_put(i) for i in range(50)], 4)
        base = 1000
        for conc, n in ((1, max(count // 4, 100)), (16, count)):
            c0 = process_cpu(proc)
            res = run_batch("127.0.0.1", port, [s3_put(base + i) for i in range(n)], conc)
            rows.append({**_row("PUT", conc, res, process_cpu(proc) - c0, 0.0), "target": "weed"})
            paths = [f"/bench/{base + i}" for i, r in enumerate(res.results) if r is not None]
            base += n
            c0 = process_cpu(proc)
            res = run_batch("127.0.0.1", port, [get_job(x, {}, size) for x in paths], conc)
            rows.append({**_row("GET", conc, res, process_cpu(proc) - c0, 0.0), "target": "weed"})
    finally:
        weed.stop()
    return rows


def _row(op: str, conc: int, res: Any, se_cpu: float, pg_cpu: float) -> dict[str, Any]:
    n = len(res.latencies)
    p50, p99 = p50_p99_ms(res.latencies)
    return {
        "op": op,
        "conc": conc,
        "ops": n,
        "ops_s": n / res.seconds,
        "p50": p50,
        "p99": p99,
        "se_cpu": se_cpu / n * 1000,
        "pg_cpu": pg_cpu / n * 1000,
    }


if __name__ == "__main__":
    raise SystemExit(main())
