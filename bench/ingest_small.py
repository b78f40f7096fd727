"""The ingester in front of one storage element: raw PUT of 4 KiB and 1 MiB files at
concurrency 1 and 16, next to SeaweedFS's fsync'd S3 PUT of the same bodies.

A quick loop for the ingester's own cost per upload (issue 7), where ``bench/run`` takes
minutes: one SE (local disk, catalog on ``--database-url`` or none) and one or more
ingesters as real processes, a stand-in admin (JWKS, client_credentials token, a static
SE registry whose capacity is read from the SE's ``/info`` on every registry read), the
same load client as ``bench/run``. Targets alternate row by row (each ingester, the SE
directly with ``--se-direct``, SeaweedFS) so all see the same machine load. Prints
ops/s, MB/s, p50/p99 ms and the CPU per operation of the ingester, the SE and
PostgreSQL (SeaweedFS: all its CPU in the "srv" column). ``--ingester NAME=TREE`` runs
an ingester from another code tree (``git archive <commit> ingester-module lib``), so
versions compare row by row; ``--se-tree`` pins the SE's code the same way.
``--py-spy`` records each ingester during its c16 rows (on-CPU samples) and prints its
top frames.

    .venv/bin/python bench/ingest_small.py --seaweed --se-direct \
        --ingester before=/tmp/before-tree --ingester after=

Everything it starts and writes is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
MiB = 1024 * KiB


class StandInAdmin:
    """What the ingester needs of the admin: JWKS, a service token, the SE registry."""

    def __init__(self, issuer: TestIssuer, se_urls: list[str]) -> None:
        self.issuer = issuer
        self.se_urls = se_urls
        admin = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/.well-known/jwks.json":
                    self._send(200, {"keys": [admin.issuer.key.jwk()]})
                elif self.path.startswith("/api/v1/storage-elements"):
                    items = [admin.item(url) for url in admin.se_urls]
                    self._send(200, {"items": items, "total": len(items), "limit": 1000,
                                     "offset": 0, "has_more": False})  # fmt: skip
                else:
                    self._send(404, {"error": {"code": "NOT_FOUND", "message": self.path}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                if self.path == "/api/v1/auth/token":
                    token = admin.issuer.token(sub="sa_ingester", ttl=900)
                    self._send(200, {"access_token": token, "token_type": "bearer",
                                     "expires_in": 900})  # fmt: skip
                else:
                    self._send(404, {"error": {"code": "NOT_FOUND", "message": self.path}})

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def item(self, url: str) -> dict[str, Any]:
        info = httpx.get(f"{url}/api/v1/info", timeout=5).json()
        return {
            "storage_id": info["storage_id"],
            "name": info["name"],
            "url": url,
            "mode": info["mode"],
            "status": "online",
            "backend": info["backend"],
            "capacity": info["capacity"],
        }

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _pythonpath(tree: str) -> dict[str, str]:
    """Run a service from another code tree: its packages shadow this checkout's."""
    if not tree:
        return {}
    root = Path(tree).resolve()
    parts = [root / d for d in ("storage-element", "ingester-module", "lib")]
    return {"PYTHONPATH": os.pathsep.join(str(p) for p in parts)}


def _row(target: str, size: int, conc: int, res: Any, cpu: dict[str, float]) -> dict[str, Any]:
    n = len(res.latencies)
    p50, p99 = p50_p99_ms(res.latencies)
    return {
        "target": target,
        "size": size,
        "conc": conc,
        "ops": n,
        "ops_s": n / res.seconds,
        "mb_s": n * size / res.seconds / 1e6,
        "p50": p50,
        "p99": p99,
        **{k: v / n * 1000 for k, v in cpu.items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default="", help="a scratch catalog database is made on it")
    ap.add_argument("--count", type=int, default=1500, help="4 KiB uploads per c16 row")
    ap.add_argument("--big-count", type=int, default=150, help="1 MiB uploads per c16 row")
    ap.add_argument("--sizes", default="4096,1048576", help="comma-separated body sizes")
    ap.add_argument("--rounds", type=int, default=1, help="repeat every row this many times")
    ap.add_argument("--seaweed", action="store_true", help="also SeaweedFS S3 (fsync'd bucket)")
    ap.add_argument(
        "--se-direct", action="store_true", help="also the same PUTs straight to the SE"
    )
    ap.add_argument("--py-spy", default=None, help="py-spy binary: profile the ingester at c16")
    ap.add_argument(
        "--ingester",
        action="append",
        default=[],
        metavar="NAME=TREE",
        help="an ingester run from the code tree TREE (a `git archive` of some commit; "
        "empty = this checkout); repeat to compare versions row by row (default: one, here)",
    )
    ap.add_argument(
        "--se-tree", default="", help="run the SE from this code tree (default: this checkout)"
    )
    ap.add_argument("--keep-profiles", default=None, help="copy py-spy's raw stacks here")
    ap.add_argument("--env", action="append", default=[], help="extra IG_/SE_ setting NAME=VALUE")
    args = ap.parse_args()
    (ROOT / ".artstore").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ingest-small-", dir=ROOT / ".artstore"))
    issuer = TestIssuer()
    db = None
    catalog = ""
    if args.database_url:
        os.environ["TEST_DATABASE_URL"] = args.database_url
        db = TestDatabase(f"igsmall{uuid.uuid4().hex[:6]}")
        catalog = db.url
    trust = {
        "JWT_ISSUER": "artstore-test",
        "JWT_AUDIENCE": "artstore",
        "LOG_LEVEL": "WARNING",
    }
    extra = dict(item.partition("=")[::2] for item in args.env)
    se_env = {
        "SE_ID": "se-ig-small",
        "SE_MODE": "edit",
        "SE_DATA_DIR": str(work / "data"),
        "SE_RESERVE_BYTES": "0",
        "DATABASE_URL": catalog,
        "JWKS_URL": issuer.jwks_url,
        **trust,
        **{k: v for k, v in extra.items() if k.startswith("SE_")},
        **_pythonpath(args.se_tree),
    }
    se = ServiceProcess("storage-element", se_env, free_port(), work / "se.log")
    admin: StandInAdmin | None = None
    igs: dict[str, ServiceProcess] = {}
    weed: AnonymousSeaweed | None = None
    sizes = [int(s) for s in args.sizes.split(",")]
    payloads = Payloads(block_size=max(max(sizes), 64 * KiB))
    rows: list[dict[str, Any]] = []
    tops: list[dict[str, Any]] = []
    try:
        se.start()
        admin = StandInAdmin(issuer, [se.url])
        ig_env = {
            "ADMIN_URL": admin.url,
            "JWKS_URL": f"{admin.url}/.well-known/jwks.json",
            "IG_CLIENT_ID": "sa_ingester",
            "IG_CLIENT_SECRET": "bench",
            **trust,
            **{k: v for k, v in extra.items() if not k.startswith("SE_")},
        }
        assert se.proc is not None
        procs = {"se": psutil.Process(se.proc.pid)}
        for spec in args.ingester or ["ingester="]:
            name, _, tree = spec.partition("=")
            env = {**ig_env, **_pythonpath(tree)}
            igs[name] = ServiceProcess("ingester", env, free_port(), work / f"{name}.log")
            igs[name].start()
            assert igs[name].proc is not None
            procs[name] = psutil.Process(igs[name].proc.pid)  # type: ignore[union-attr]
        auth = {"Authorization": f"Bearer {issuer.token(scopes='files:read files:write')}"}

        if args.seaweed:
            weed = AnonymousSeaweed(bucket="bench", fsync=True)
            shutil.rmtree(weed.root, ignore_errors=True)
            weed.root = Path(tempfile.mkdtemp(prefix="weed-", dir=work))
            weed.start()
            assert weed.proc is not None
            procs["weed"] = psutil.Process(weed.proc.pid)

        def ig_job(i: int, size: int) -> Job:
            path = f"/api/v1/files/upload?filename=b{i}.bin"
            return put_job(payloads, i, size, path, auth, "PUT", 201)

        def se_job(i: int, size: int) -> Job:
            path = f"/api/v1/files?filename=d{i}.bin&retention_policy=temporary"
            return put_job(payloads, i, size, path, auth, "POST", 201)

        def weed_job(i: int, size: int) -> Job:
            return put_job(payloads, i, size, f"/bench/{size}/{i}", {})

        for ig in igs.values():  # warm-up
            run_batch("127.0.0.1", ig.port, [ig_job(i, 4 * KiB) for i in range(100)], 4)
        if weed is not None:
            run_batch("127.0.0.1", weed.ports["s3"], [weed_job(i, 4 * KiB) for i in range(50)], 4)
        base = 1000
        for _ in range(args.rounds):
            for size in sizes:
                c16 = args.count if size <= 64 * KiB else args.big_count
                for conc, count in ((1, max(c16 // 4, 25)), (16, c16)):
                    targets = [*igs] + (["se-direct"] if args.se_direct else [])
                    targets += ["weed"] if weed is not None else []
                    for target in targets:
                        if target == "se-direct":
                            port, make = se.port, se_job
                            watched = {"srv": procs["se"]}
                        elif target == "weed":
                            assert weed is not None
                            port, make = weed.ports["s3"], weed_job
                            watched = {"srv": procs["weed"]}
                        else:
                            port, make = igs[target].port, ig_job
                            watched = {"ig": procs[target], "srv": procs["se"]}
                        jobs = [make(base + i, size) for i in range(count)]
                        base += count
                        prof = None
                        if args.py_spy and conc == 16 and target in igs:
                            out = work / f"{target}-{size}.txt"
                            prof = Profiler(args.py_spy, procs[target].pid, out, on_cpu=True)
                        c0 = {k: process_cpu(p) for k, p in watched.items()}
                        pg0 = postgres_cpu()
                        res = run_batch("127.0.0.1", port, jobs, conc)
                        cpu = {k: process_cpu(p) - c0[k] for k, p in watched.items()}
                        cpu["pg"] = postgres_cpu() - pg0
                        if prof is not None:
                            tops.append({"target": target, "size": size, **prof.finish(30)})
                            if args.keep_profiles:
                                shutil.copy(prof.out, Path(args.keep_profiles) / prof.out.name)
                        rows.append(_row(target, size, conc, res, cpu))
        print(
            f"{'target':12} {'size':>8} {'conc':>4} {'ops':>5} {'ops/s':>8} {'MB/s':>7}"
            f" {'p50 ms':>7} {'p99 ms':>7} {'ig ms/op':>8} {'srv ms/op':>9} {'pg ms/op':>8}"
        )
        for r in rows:
            print(
                f"{r['target']:12} {r['size']:>8} {r['conc']:>4} {r['ops']:>5}"
                f" {r['ops_s']:>8.1f} {r['mb_s']:>7.1f} {r['p50']:>7.1f} {r['p99']:>7.1f}"
                f" {r.get('ig', 0.0):>8.2f} {r['srv']:>9.2f} {r['pg']:>8.2f}"
            )
        if tops:
            print(json.dumps(tops, indent=1))
    finally:
        if weed is not None:
            weed.stop()
        for ig in igs.values():
            ig.stop()
        se.stop()
        if admin is not None:
            admin.close()
        issuer.close()
        if db is not None:
            db.drop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
