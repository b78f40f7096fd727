"""Storage element throughput: local disk vs. S3 (SeaweedFS), PUT and GET.

Starts a SeaweedFS server (``weed server`` from the venv, loopback only, telemetry off,
the bucket set to fsync; tests/support/seaweed.py) and then, one after the other, two
storage elements as real processes: ``SE_BACKEND=local`` on a fresh data directory and
``SE_BACKEND=s3`` on the SeaweedFS bucket. Against each it runs, over loopback:

* ``--small-count`` 4 KiB files (default 500) uploaded at ``--small-concurrency`` (16),
  then downloaded at the same concurrency;
* ``--big-count`` 64 MiB files (default 4) uploaded and downloaded at concurrency 1,
  then again at concurrency 4.

Uploads are raw bodies (``Content-Length`` known); every download is checked against
the upload's SHA-256. For each batch: ops/s and MB/s over the batch's wall time
(10^6 bytes), and the p50/p99 latency of single requests.

Run from the repository root::

    .venv/bin/python bench/se_backends.py [--json out.json]

Everything it starts is stopped and every directory it made is removed at the end,
also on an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.issuer import TestIssuer  # noqa: E402
from tests.support.process import ServiceProcess, free_port  # noqa: E402
from tests.support.seaweed import SeaweedServer  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass
class Row:
    backend: str
    op: str
    size: str
    files: int
    concurrency: int
    seconds: float
    ops_per_s: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: with 4 samples p99 is the slowest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


class Bench:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=600.0)

    def batch(
        self, concurrency: int, jobs: list[Callable[[httpx.Client], None]]
    ) -> tuple[float, list[float]]:
        """Run ``jobs`` on ``concurrency`` threads (one client each); wall time, latencies."""
        latencies: list[float] = []
        clients = [self._client() for _ in range(concurrency)]
        queue = list(jobs)  # list.pop is atomic: the threads share it without a lock

        def worker(client: httpx.Client) -> None:
            while queue:
                try:
                    job = queue.pop()
                except IndexError:
                    return
                t0 = time.perf_counter()
                job(client)
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        try:
            with ThreadPoolExecutor(concurrency) as pool:
                for f in [pool.submit(worker, c) for c in clients]:
                    f.result()
        finally:
            for c in clients:
                c.close()
        return time.perf_counter() - start, latencies

    def put_get(self, backend: str, label: str, blobs: list[bytes], concurrency: int) -> list[Row]:
        stored: dict[int, tuple[str, str]] = {}

        def put(i: int) -> Callable[[httpx.Client], None]:
            def run(c: httpx.Client) -> None:
                r = c.post(
                    "/api/v1/files",
                    content=blobs[i],
                    params={"filename": f"bench-{i}.bin"},
                    headers={"Content-Type": "application/octet-stream"},
                )
                if r.status_code != 201:
                    raise RuntimeError(f"upload answered {r.status_code}: {r.text[:300]}")
                stored[i] = (r.json()["file_id"], r.json()["checksum"])

            return run

        def get(i: int) -> Callable[[httpx.Client], None]:
            def run(c: httpx.Client) -> None:
                file_id, checksum = stored[i]
                h = hashlib.sha256()
                with c.stream("GET", f"/api/v1/files/{file_id}/download") as r:
                    if r.status_code != 200:
                        raise RuntimeError(f"download answered {r.status_code}")
                    for chunk in r.iter_bytes(1 * MiB):
                        h.update(chunk)
                if f"sha256:{h.hexdigest()}" != checksum:
                    raise RuntimeError(f"download of {file_id} differs from its upload")

            return run

        rows = []
        total = sum(len(b) for b in blobs)
        for op, make in (("PUT", put), ("GET", get)):
            seconds, lat = self.batch(concurrency, [make(i) for i in range(len(blobs))])
            rows.append(
                Row(
                    backend=backend,
                    op=op,
                    size=label,
                    files=len(blobs),
                    concurrency=concurrency,
                    seconds=round(seconds, 3),
                    ops_per_s=round(len(blobs) / seconds, 1),
                    mb_per_s=round(total / seconds / 1e6, 1),
                    p50_ms=round(statistics.median(lat) * 1000, 1),
                    p99_ms=round(percentile(lat, 0.99) * 1000, 1),
                )
            )
        return rows


def run_backend(
    backend: str,
    env: dict[str, str],
    work: Path,
    issuer: TestIssuer,
    args: argparse.Namespace,
) -> list[Row]:
    se_id = f"bench-{backend}-{uuid.uuid4().hex[:6]}"
    proc = ServiceProcess(
        "storage-element",
        {
            "SE_ID": se_id,
            "SE_MODE": "rw",
            "SE_DATA_DIR": str(work / se_id),
            "SE_RESERVE_BYTES": "0",
            "DATABASE_URL": "",
            "JWKS_URL": issuer.jwks_url,
            "JWT_ISSUER": "artstore-test",
            "JWT_AUDIENCE": "artstore",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
            **env,
        },
        free_port(),
        work / f"{se_id}.log",
    )
    rng = random.Random(1)
    small = [rng.randbytes(4 * KiB) for _ in range(args.small_count)]
    big_block = rng.randbytes(64 * MiB)
    # Distinct contents without holding count x 64 MiB twice: vary the first bytes.
    big = [i.to_bytes(8, "big") + big_block[8:] for i in range(args.big_count)]
    try:
        proc.start()
        bench = Bench(proc.url, issuer.token(sub="bench", ttl=7200))
        bench.put_get(backend, "warm-up", small[:20], 4)  # imports, JWKS, first folders
        rows = bench.put_get(backend, "4 KiB", small, args.small_concurrency)
        for conc in (1, 4) if big else ():
            rows += bench.put_get(backend, "64 MiB", big, conc)
        return rows
    finally:
        proc.stop()


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg(),
    }


def print_table(rows: list[Row]) -> None:
    head = "| backend | op | size | files | conc | s | ops/s | MB/s | p50 ms | p99 ms |"
    print(head)
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        print(
            f"| {r.backend} | {r.op} | {r.size} | {r.files} | {r.concurrency} | {r.seconds} "
            f"| {r.ops_per_s} | {r.mb_per_s} | {r.p50_ms} | {r.p99_ms} |"
        )


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-count", type=int, default=500)
    parser.add_argument("--small-concurrency", type=int, default=16)
    parser.add_argument("--big-count", type=int, default=4)
    parser.add_argument("--backends", default="local,s3")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _raise_exit)

    work = Path(tempfile.mkdtemp(prefix="se-backends-", dir=ROOT / ".artstore"))
    issuer = TestIssuer()
    weed: SeaweedServer | None = None
    rows: list[Row] = []
    info = machine()
    try:
        for backend in args.backends.split(","):
            env: dict[str, str] = {}
            if backend == "s3":
                weed = SeaweedServer(bucket="bench", fsync=True).start()
                env = {**weed.s3_env("bench/"), "SE_MAX_CAPACITY": str(100 * GiB)}
            rows += run_backend(backend, env, work, issuer, args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup is not to be interrupted
        if weed is not None:
            weed.stop()
        issuer.close()
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    print_table(rows)
    info["load_avg_at_end"] = os.getloadavg()
    print(f"\nmachine: {json.dumps(info)}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": [asdict(r) for r in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
