"""1 MiB GETs: SeaweedFS, one SE directly, and the same SE through the query module.

The quick loop for the download path (issue 7): an admin, one local-disk SE and a query
module as real processes over one catalog (tests/support/system.py), SeaweedFS with an
anonymous S3 gateway, and the load client of ``bench/run``. Objects are written once,
then every round GETs them at concurrency 1 and 16, the targets alternating, and prints
ops/s, p50/p99 and the server CPU per GET (for the query: query and SE separately).
``--py-spy se|query`` records that process (on-CPU samples) during the c16 batches and
prints its top frames.

    .venv/bin/python bench/se_download.py --database-url postgresql://postgres@127.0.0.1/postgres

Everything it starts and writes is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

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
    process_cpu,
    put_job,
    run_batch,
)
from tests.support.database import TestDatabase  # noqa: E402
from tests.support.system import System, wait_ready  # noqa: E402

MiB = 1024 * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", required=True, help="a scratch database is made on it")
    ap.add_argument("--objects", type=int, default=64, help="distinct objects per target")
    ap.add_argument("--count", type=int, default=800, help="GETs per c16 batch (c1: a quarter)")
    ap.add_argument("--size", type=int, default=MiB)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--targets", default="weed,se,query")
    ap.add_argument("--py-spy", choices=["se", "query"], default=None)
    ap.add_argument("--env", action="append", default=[], help="extra SE setting NAME=VALUE")
    ap.add_argument("--qenv", action="append", default=[], help="extra query setting NAME=VALUE")
    args = ap.parse_args()
    targets = args.targets.split(",")

    (ROOT / ".artstore").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="se-download-", dir=ROOT / ".artstore"))
    os.environ["TEST_DATABASE_URL"] = args.database_url
    db = TestDatabase(f"sedl{os.getpid()}")
    system: System | None = None
    weed: AnonymousSeaweed | None = None
    payloads = Payloads(block_size=max(args.size, 64 * 1024))
    rows: list[dict[str, Any]] = []
    tops: dict[str, Any] = {}
    try:
        system = System(work / "sys", db, LOG_LEVEL="WARNING")
        se = system.add_se(
            "edit", LOG_LEVEL="WARNING", **dict(i.partition("=")[::2] for i in args.env)
        )
        query = system.start_query(
            LOG_LEVEL="WARNING", **dict(i.partition("=")[::2] for i in args.qenv)
        )
        wait_ready(query)
        token = system.user_token(["user"])
        auth = {"Authorization": f"Bearer {token}"}
        se_proc = psutil.Process(se.process.proc.pid)  # type: ignore[union-attr]
        q_proc = psutil.Process(query.proc.pid)  # type: ignore[union-attr]
        se_port = int(se.url.rsplit(":", 1)[1])
        q_port = int(query.url.rsplit(":", 1)[1])

        def se_put(i: int) -> Job:
            path = f"/api/v1/files?filename=b{i}.bin"
            return put_job(payloads, i, args.size, path, auth, "POST", 201)

        res = run_batch("127.0.0.1", se_port, [se_put(i) for i in range(args.objects)], 4)
        se_paths = [f"/api/v1/files/{json.loads(b)['file_id']}/download" for b in res.results]
        weed_paths: list[str] = []
        weed_port = 0
        weed_proc: psutil.Process | None = None
        if "weed" in targets:
            weed = AnonymousSeaweed(bucket="bench", fsync=True)
            shutil.rmtree(weed.root, ignore_errors=True)
            weed.root = Path(tempfile.mkdtemp(prefix="weed-", dir=work))
            weed.start()
            weed_proc = psutil.Process(weed.proc.pid)  # type: ignore[union-attr]
            weed_port = weed.ports["s3"]

            weed_paths = [f"/bench/{i}" for i in range(args.objects)]
            puts = [put_job(payloads, i, args.size, p, {}) for i, p in enumerate(weed_paths)]
            run_batch("127.0.0.1", weed_port, puts, 4)

        plan: dict[str, tuple[int, list[str], dict[str, str], list[psutil.Process]]] = {
            "se": (se_port, se_paths, auth, [se_proc]),
            "query": (q_port, se_paths, auth, [q_proc, se_proc]),
        }
        if weed_proc is not None:
            plan["weed"] = (weed_port, weed_paths, {}, [weed_proc])
        for target in targets:  # warm-up: page cache, connection pools
            port, paths, hdrs, _ = plan[target]
            run_batch("127.0.0.1", port, [get_job(p, hdrs, args.size) for p in paths], 4)
        for rnd in range(1, args.rounds + 1):
            for conc, n in ((1, max(args.count // 4, 50)), (16, args.count)):
                for target in targets:
                    port, paths, hdrs, procs = plan[target]
                    jobs = [get_job(paths[i % len(paths)], hdrs, args.size) for i in range(n)]
                    prof = None
                    if args.py_spy and conc == 16 and rnd == 1 and target == args.py_spy:
                        pid = (se_proc if args.py_spy == "se" else q_proc).pid
                        prof = Profiler(
                            str(ROOT / ".venv/bin/py-spy"), pid, work / "spy.txt", on_cpu=True
                        )
                    c0 = [process_cpu(p) for p in procs]
                    res = run_batch("127.0.0.1", port, jobs, conc)
                    cpu = [process_cpu(p) - c for p, c in zip(procs, c0, strict=True)]
                    if prof is not None:
                        tops[target] = prof.finish(30)
                        keep = ROOT / ".artstore" / f"se-download-spy-{target}.txt"
                        shutil.copy(work / "spy.txt", keep)
                        tops[target]["raw"] = str(keep)
                    rows.append(_row(rnd, target, conc, res, cpu))
        print(
            f"{'rnd':>3} {'target':6} {'conc':>4} {'ops':>5} {'ops/s':>8} {'p50 ms':>7}"
            f" {'p99 ms':>7} {'cpu ms/op':>9} {'(SE)':>6}"
        )
        for r in rows:
            se_part = f"{r['cpu'][1]:>6.2f}" if len(r["cpu"]) > 1 else ""
            print(
                f"{r['rnd']:>3} {r['target']:6} {r['conc']:>4} {r['ops']:>5}"
                f" {r['ops_s']:>8.1f} {r['p50']:>7.2f} {r['p99']:>7.2f}"
                f" {r['cpu'][0]:>9.2f} {se_part}"
            )
        if tops:
            print(json.dumps(tops, indent=1))
    finally:
        if weed is not None:
            weed.stop()
        if system is not None:
            system.stop()
        db.drop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _row(rnd: int, target: str, conc: int, res: Any, cpu: list[float]) -> dict[str, Any]:
    n = len(res.latencies)
    p50, p99 = p50_p99_ms(res.latencies)
    return {
        "rnd": rnd,
        "target": target,
        "conc": conc,
        "ops": n,
        "ops_s": n / res.seconds,
        "p50": p50,
        "p99": p99,
        "cpu": [c / n * 1000 for c in cpu],
    }


if __name__ == "__main__":
    raise SystemExit(main())
