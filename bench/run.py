"""ArtStore vs SeaweedFS vs the disk, in one run (issue 7): one table, one JSON file.

In one run, on one data directory (default a fresh folder under ``.artstore/bench``):

1. the disk's own limits: fsync'd sequential write (64 MiB files, each fsync'd) and
   durable 4 KiB creates (temp file + write + fsync + rename + directory fsync) at
   concurrency 1 and 16;
2. starts ``artstore up --data-dir <tmp>`` (embedded PostgreSQL unless
   ``--database-url``; admin 8000, SEs 8010-8012, ingester 8020, query 8030) and a
   SeaweedFS ``weed server`` (master, volume, filer, S3; loopback, telemetry off,
   ``-volume.max=100``, the bucket fsync'd; anonymous S3 so both get plain HTTP);
3. PUT then GET of 4 KiB, 1 MiB and 64 MiB objects at concurrency 1 and 16 against
   SeaweedFS S3, one ArtStore SE directly (se-rw-1, 8011) and ArtStore through the
   ingester (PUT) and query (GET), alternating targets (and their order per round);
4. RSS of every server while one 1 GiB file goes up and down; search p50/p95 at
   ``--search-rows`` catalog rows (generate_series into the up's database);
   ``artstore se rebuild-index`` (offline) files/s over ``--rebuild-files`` attr files;
5. scale (issue 19, ``bench/se_scale.py``): one more SE, started on its own over
   ``--scale-files`` generated files (1M; quick 100k; smoke 2,000; 0 skips it) with
   their rows in a scratch database on the same PostgreSQL: time to ready, RSS at rest
   and during GC, reconcile and a list, pass files/s, list latency with and without
   the catalog.

The load client is the same for both systems: keep-alive HTTP/1.1 on asyncio streams
(uvloop), one connection per concurrent request, bodies sent from one shared random
block (8-byte distinct prefixes), answers counted, not kept. Server CPU per operation
is psutil's CPU time of the servers' processes (PostgreSQL's with its backends) over
the row divided by its operations; RSS is sampled every 0.1 s.

    bench/run [--quick] [--database-url URL] [--py-spy PATH] [--json PATH]

Everything it starts is stopped and every folder it made is removed at the end, also
on Ctrl-C, SIGTERM, an error and when ``--timeout`` runs out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # type: ignore[import-untyped]  # noqa: E402
from _common import (  # type: ignore[import-not-found]  # noqa: E402
    AnonymousSeaweed,
    BatchResult,
    BenchError,
    GiB,
    Job,
    KiB,
    MiB,
    Payloads,
    Profiler,
    Watch,
    disk_durable_creates,
    disk_seq_write,
    get_job,
    human,
    percentile,
    put_job,
    py_spy_record,
    run_batch,
    summarise_stacks,
)
from se_memory import filesystem_type  # type: ignore[import-not-found]  # noqa: E402

HOST = "127.0.0.1"
ADMIN, SE_PORT, INGESTER, QUERY = 8000, 8011, 8020, 8030
SE_NAME = "se-rw-1"
BUCKET = "bench"
TARGETS = {"weed": "SeaweedFS S3", "se": "ArtStore SE direct", "edge": "ArtStore ingester/query"}
SIZES = (4 * KiB, 1 * MiB, 64 * MiB)
CONCURRENCY = (1, 16)
# (size, concurrency) -> objects per target and round
COUNTS = {
    "quick": {
        (4 * KiB, 1): 150,
        (4 * KiB, 16): 400,
        (MiB, 1): 30,
        (MiB, 16): 80,
        (64 * MiB, 1): 3,
        (64 * MiB, 16): 16,
    },
    "default": {
        (4 * KiB, 1): 600,
        (4 * KiB, 16): 2000,
        (MiB, 1): 100,
        (MiB, 16): 320,
        (64 * MiB, 1): 6,
        (64 * MiB, 16): 16,
    },
}
COUNTS["smoke"] = {key: max(2, n // 20) for key, n in COUNTS["quick"].items()}
COUNTS["smoke"][(64 * MiB, 16)] = 16
ROUNDS = {"smoke": 1, "quick": 1, "default": 2}
# No request of a batch starts after this many seconds (slow targets do fewer operations).
BATCH_SECONDS = {"smoke": 10.0, "quick": 15.0, "default": 20.0}


class OutOfTime(BenchError):  # type: ignore[misc]
    """``--timeout`` ran out."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- ArtStore: `artstore up` as a subprocess -----------------------------------------------
class ArtStoreUp:
    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.database_url = database_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.out = root.parent / "artstore-up.out"
        self.password = ""
        self._token = ("", 0.0)
        self.pids: dict[str, int] = {}

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        with self.out.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "artstore.cli.main", "up", "--data-dir", str(self.root)],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tail(self, n: int = 40) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.out.read_text(errors="replace").splitlines()[-n:])
        return ""

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise BenchError(f"artstore up exited:\n{self.tail()}")
            text = self.out.read_text(errors="replace")
            if "ready; press Ctrl-C" in text:
                m = re.search(r"admin login: admin / (\S+)", text)
                if m is None:
                    raise BenchError(f"no admin password in the up's output:\n{self.tail()}")
                self.password = m.group(1)
                self._find_pids()
                return
            time.sleep(0.5)
        raise BenchError(f"artstore up not ready in {timeout:.0f} s:\n{self.tail()}")

    def _find_pids(self) -> None:
        assert self.proc is not None
        for child in psutil.Process(self.proc.pid).children():
            cmd = child.cmdline()
            service = cmd[cmd.index("serve") + 1] if "serve" in cmd else child.name()
            if service == "storage-element":
                service = child.environ().get("SE_ID", f"se-{child.pid}")
            self.pids[service] = child.pid
        if not self.database_url:
            data = str(self.root / "postgres" / "data")
            for p in psutil.process_iter(["name", "cmdline", "ppid"]):
                cmd = p.info["cmdline"] or []
                if p.info["name"] != "postgres" or data not in cmd or "-D" not in cmd:
                    continue
                if p.info["ppid"] == 1 or psutil.Process(p.info["ppid"]).name() != "postgres":
                    self.pids["postgres"] = p.pid

    @property
    def dsn(self) -> str:
        """A plain libpq URL of the up's database (asyncpg / the CLI)."""
        if self.database_url:
            return self.database_url.replace("postgresql+asyncpg://", "postgresql://")
        return f"postgresql://postgres@/artstore?host={self.root / 'postgres' / 'data'}"

    def token(self) -> str:
        """The admin's access token, renewed after 10 minutes (its TTL is 15)."""
        value, at = self._token
        if value and time.monotonic() - at < 600:
            return value
        r = httpx.post(
            f"http://{HOST}:{ADMIN}/api/v1/auth/token",
            data={"grant_type": "password", "username": "admin", "password": self.password},
            timeout=30,
        )
        if r.status_code != 200:
            raise BenchError(f"admin token: {r.status_code} {r.text[:300]}")
        self._token = (str(r.json()["access_token"]), time.monotonic())
        return self._token[0]

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # the up stops its services and PostgreSQL
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        for name, pid in self.pids.items():  # anything the up left behind
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                p.send_signal(signal.SIGINT if name == "postgres" else signal.SIGKILL)
                p.wait(20)


# -- the load ------------------------------------------------------------------------------
class Load:
    """Builds the jobs of each target; keeps what each PUT stored for the GETs."""

    def __init__(self, up: ArtStoreUp, weed: AnonymousSeaweed, payloads: Payloads) -> None:
        self.up, self.weed, self.payloads = up, weed, payloads
        self.seq = 0  # every body is distinct across the whole run

    def address(self, target: str, op: str) -> tuple[str, int]:
        if target == "weed":
            return HOST, self.weed.ports["s3"]
        if target == "se":
            return HOST, SE_PORT
        return HOST, INGESTER if op == "PUT" else QUERY

    def puts(self, target: str, size: int, n: int) -> list[Job]:
        auth = {"Authorization": f"Bearer {self.up.token()}"}
        base = self.seq
        self.seq += n
        payloads = self.payloads

        def download_path(body: bytes) -> str:
            return f"/api/v1/files/{json.loads(body)['file_id']}/download"

        def job(i: int) -> Job:
            """Each PUT's job returns the path its object is read back from."""
            if target == "weed":
                path = f"/{BUCKET}/{size}/{i}"
                return put_job(payloads, i, size, path, {}, then=lambda _: path)
            method, path = (
                ("POST", f"/api/v1/files?filename=b{i}.bin")
                if target == "se"
                else ("PUT", f"/api/v1/files/upload?filename=b{i}.bin")
            )
            return put_job(payloads, i, size, path, auth, method, 201, download_path)

        return [job(base + k) for k in range(n)]

    def gets(self, target: str, size: int, paths: list[str]) -> list[Job]:
        headers = {} if target == "weed" else {"Authorization": f"Bearer {self.up.token()}"}
        return [get_job(p, headers, size) for p in paths]


def group_of(target: str, names: list[str]) -> list[str]:
    return ["weed"] if target == "weed" else [n for n in names if n != "weed"]


def row_result(
    op: str,
    size: int,
    conc: int,
    target: str,
    batches: list[BatchResult],
    cpu: dict[str, float],
    rss: dict[str, float],
) -> dict[str, Any]:
    ops = sum(len(b.latencies) for b in batches)
    seconds = sum(b.seconds for b in batches)
    lat = [x for b in batches for x in b.latencies]
    server = group_of(target, list(cpu))
    return {
        "op": op,
        "size": size,
        "size_label": human(size),
        "concurrency": conc,
        "target": target,
        "ops": ops,
        "seconds": round(seconds, 3),
        "ops_per_s": round(ops / seconds, 1),
        "mb_per_s": round(ops * size / seconds / 1e6, 1),
        "p50_ms": round(statistics.median(lat) * 1000, 2),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
        "server_cpu_ms_per_op": round(sum(cpu[g] for g in server) / ops * 1000, 3),
        "server_cpu_ms_per_op_by_process": {g: round(cpu[g] / ops * 1000, 3) for g in server},
        "client_cpu_ms_per_op": round(sum(b.client_cpu_s for b in batches) / ops * 1000, 3),
        "peak_rss_mib": {g: rss[g] for g in server},
    }


class Bench:
    def __init__(
        self,
        load: Load,
        watch: Watch,
        rounds: int,
        counts: dict[Any, int],
        profile: dict[tuple[str, int, int, str], tuple[str, int]],
        work: Path,
    ) -> None:
        self.load, self.watch, self.rounds, self.counts = load, watch, rounds, counts
        self.profile, self.work = profile, work
        self.batch_seconds = 3600.0
        self.rows: list[dict[str, Any]] = []
        self.profiles: dict[str, Any] = {}

    def _measure(
        self, op: str, size: int, conc: int, target: str, jobs: list[Job], rnd: int
    ) -> tuple[BatchResult, dict[str, float], dict[str, float]]:
        host, port = self.load.address(target, op)
        prof = None
        spec = self.profile.get((op, size, conc, target))
        if spec is not None and rnd == 0:
            prof = Profiler(spec[0], spec[1], self.work / f"profile-{target}.txt")
        self.watch.begin_window()
        before = self.watch.cpu()
        result = run_batch(host, port, jobs, conc, self.batch_seconds)
        after = self.watch.cpu()
        rss = self.watch.window()
        if prof is not None:
            key = f"{op} {human(size)} c{conc} {TARGETS[target]}"
            self.profiles[key] = prof.finish()
        return result, {k: after[k] - before[k] for k in after}, rss

    def case(self, size: int, conc: int) -> None:
        n = self.counts[(size, conc)]
        order = list(TARGETS)
        stored: dict[str, list[str]] = {}
        for op in ("PUT", "GET"):
            batches: dict[str, list[BatchResult]] = {t: [] for t in order}
            cpu: dict[str, dict[str, float]] = {t: {} for t in order}
            rss: dict[str, dict[str, float]] = {t: {} for t in order}
            for rnd in range(self.rounds):
                for target in order if rnd % 2 == 0 else order[::-1]:
                    if op == "PUT":
                        jobs = self.load.puts(target, size, n)
                    else:
                        jobs = self.load.gets(target, size, stored[target])
                    res, c, r = self._measure(op, size, conc, target, jobs, rnd)
                    if op == "PUT" and rnd == 0:
                        stored[target] = [p for p in res.results if p is not None]
                    batches[target].append(res)
                    for k, v in c.items():
                        cpu[target][k] = cpu[target].get(k, 0.0) + v
                    for k, v in r.items():
                        rss[target][k] = max(rss[target].get(k, 0.0), v)
            for target in order:
                row = row_result(op, size, conc, target, batches[target], cpu[target], rss[target])
                self.rows.append(row)
                log(
                    f"{op:<3} {human(size):>7} c{conc:<2} {TARGETS[target]:<24} "
                    f"{row['ops_per_s']:>8} ops/s {row['mb_per_s']:>8} MB/s "
                    f"p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms "
                    f"srv CPU {row['server_cpu_ms_per_op']} ms/op "
                    f"client CPU {row['client_cpu_ms_per_op']} ms/op"
                )

    def big_file(self, size: int) -> dict[str, Any]:
        """RSS of every server while one ``size`` file goes up and comes back."""
        out: dict[str, Any] = {}
        for target in ("edge", "weed"):
            jobs = self.load.puts(target, size, 1)
            res, _, rss_put = self._measure("PUT", size, 1, target, jobs, 1)
            get = self.load.gets(target, size, list(res.results))
            res_get, _, rss_get = self._measure("GET", size, 1, target, get, 1)
            out[target] = {
                "put_seconds": round(res.seconds, 2),
                "put_mb_per_s": round(size / res.seconds / 1e6, 1),
                "get_seconds": round(res_get.seconds, 2),
                "get_mb_per_s": round(size / res_get.seconds / 1e6, 1),
                "peak_rss_mib_put": {g: rss_put[g] for g in group_of(target, list(rss_put))},
                "peak_rss_mib_get": {g: rss_get[g] for g in group_of(target, list(rss_get))},
            }
            log(
                f"1 GiB via {TARGETS[target]}: PUT {out[target]['put_mb_per_s']} MB/s, "
                f"GET {out[target]['get_mb_per_s']} MB/s; peak RSS PUT "
                f"{out[target]['peak_rss_mib_put']} GET {out[target]['peak_rss_mib_get']}"
            )
        return out


# -- search and rebuild-index --------------------------------------------------------------
def search_bench(up: ArtStoreUp, rows: int, rounds: int) -> dict[str, Any]:
    import search_latency  # type: ignore[import-not-found]

    from tests.support import catalog_rows

    async def load() -> float:
        # Indexes dropped, rows inserted, indexes built again (search_latency.bulk_load).
        t0 = time.perf_counter()
        await search_latency.bulk_load(up.dsn, rows, lambda m: log(f"  catalog:{m}"))
        return time.perf_counter() - t0

    load_s = asyncio.run(load())
    kinds = search_latency.mix(random.Random(7), rows)
    results = search_latency.run(f"http://{HOST}:{QUERY}", up.token(), kinds, rounds)
    worst = max(results, key=lambda r: r["p95_ms"])
    return {
        "files": rows,
        "catalog_rows": rows + rows // catalog_rows.REPLICA_EVERY,
        "load_seconds": round(load_s, 1),
        "rounds_per_kind": rounds,
        "kinds": results,
        "p50_ms_all": round(statistics.median(r["p50_ms"] for r in results), 1),
        "p95_ms_worst": worst["p95_ms"],
        "p95_worst_kind": worst["kind"],
    }


def scale_bench(up: ArtStoreUp, work: Path, files: int) -> dict[str, Any]:
    """bench/se_scale.py's measurements, its scratch database on the up's PostgreSQL
    server (its own SE and catalog: the up's services keep running, idle)."""
    import se_scale  # type: ignore[import-not-found]

    from artstore.cli.devdb import with_database

    server = up.database_url or with_database(up.dsn, "postgres")
    result: dict[str, Any] = se_scale.run_scale(files, database_url=server, parent=work)
    return result


def write_attr_files(data_dir: Path, count: int) -> None:
    """``count`` blobs and valid attr files, written with the SE's own model (no fsync)."""
    import hashlib

    from artstore.storage_element.attr.model import Attr

    files = data_dir / "files"
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(count):
        at = start + timedelta(seconds=7 * i)
        folder = files / at.strftime("%Y/%m/%d/%H")
        if i == 0 or (at.minute == 0 and at.second < 7):
            folder.mkdir(parents=True, exist_ok=True)
        fid = uuid.UUID(int=random.Random(i).getrandbits(128), version=4)
        body = f"bench file {i}\n".encode()
        rel = f"{at.strftime('%Y/%m/%d/%H')}/bench_{i}_admin_{at:%Y%m%dT%H%M%S}_{fid.hex[:8]}.bin"
        attr = Attr(
            file_id=str(fid),
            storage_path=rel,
            original_filename=f"bench_{i}.bin",
            content_type="application/octet-stream",
            size=len(body),
            checksum="sha256:" + hashlib.sha256(body).hexdigest(),
            uploaded_by="admin",
            uploaded_at=at,
            updated_at=at,
            version=1,
            status="active",
            retention_policy="permanent",
            ttl_days=None,
            expires_at=None,
            description=f"generated file {i}",
            tags=["bench", f"t{i % 10}"],
            metadata={"project": f"p{i % 100}"},
        )
        (files / rel).write_bytes(body)
        (files / (rel + ".attr.json")).write_bytes(attr.encode())


def rebuild_bench(up: ArtStoreUp, work: Path, count: int, py_spy: str | None) -> dict[str, Any]:
    """``artstore se rebuild-index`` (offline) over ``count`` attr files, measured three
    ways: end to end (a fresh interpreter: imports, settings, connect, walk, decode,
    write, commit), net of the command's fixed cost (the same command over an empty
    ``files/``), and the rebuild alone as the command times it ("in X s"). The timed
    runs are never under py-spy: the profile comes from a third run of its own."""

    def run(data_dir: Path, se_id: str, profile: bool = False) -> tuple[float, str]:
        prefix = (
            [*py_spy_record(py_spy, work / "profile-rebuild.txt"), "--"]
            if profile and py_spy
            else []
        )
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                *prefix,
                sys.executable,
                "-m",
                "artstore.cli.main",
                "se",
                "rebuild-index",
                "--data-dir",
                str(data_dir),
                "--se-id",
                se_id,
                "--database-url",
                up.dsn,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise BenchError(f"rebuild-index failed: {done.stdout[-500:]} {done.stderr[-1500:]}")
        return seconds, done.stdout.strip()

    def own(said: str) -> float | None:
        m = re.search(r" in ([0-9.]+) s$", said)
        return float(m.group(1)) if m else None

    data = work / "rebuild-se"
    t0 = time.perf_counter()
    write_attr_files(data, count)
    write_s = time.perf_counter() - t0
    # A new SE (none of its rows in the catalog), then again with all its rows there.
    seconds, said = run(data, "bench-rebuild")
    again_s, again_said = run(data, "bench-rebuild")
    if py_spy:
        run(data, "bench-rebuild-profiled", profile=True)
    shutil.rmtree(data, ignore_errors=True)
    # The CLI's fixed cost (imports, settings, connect), after the real runs (warm caches).
    empty = work / "rebuild-empty"
    (empty / "files").mkdir(parents=True)
    base_s, _ = run(empty, "bench-rebuild-empty")
    net = seconds - base_s
    own_s, again_own_s = own(said), own(again_said)
    return {
        "files": count,
        "write_seconds": round(write_s, 1),
        "command_seconds": round(seconds, 2),
        "empty_command_seconds": round(base_s, 2),
        "files_per_s": round(count / seconds, 1),
        "files_per_s_net_of_startup": round(count / net, 1) if net > 0.5 else None,
        "own_seconds": own_s,
        "files_per_s_own": round(count / own_s, 1) if own_s else None,
        "again_command_seconds": round(again_s, 2),
        "again_files_per_s": round(count / again_s, 1),
        "again_files_per_s_own": round(count / again_own_s, 1) if again_own_s else None,
        "output": said,
        "profiled_with_py_spy": bool(py_spy),
        "profile": summarise_stacks(work / "profile-rebuild.txt", 15) if py_spy else None,
    }


# -- report --------------------------------------------------------------------------------
def md_table(head: list[str], rows: list[list[str]], left: int = 1) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i < left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = (
        "|"
        + "|".join("-" * (w + 1) + ("-" if i < left else ":") for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(head), rule, *(line(r) for r in rows)])


def add_ratios(rows: list[dict[str, Any]], disk: dict[str, Any]) -> None:
    weed = {(r["op"], r["size"], r["concurrency"]): r for r in rows if r["target"] == "weed"}
    for r in rows:
        w = weed.get((r["op"], r["size"], r["concurrency"]))
        r["vs_seaweed"] = round(r["ops_per_s"] / w["ops_per_s"], 2) if w else None
        r["vs_disk"] = None
        if r["op"] == "PUT" and r["size"] <= 64 * KiB:
            limit = disk["durable_4k_creates"][str(r["concurrency"])]["ops_per_s"]
            r["vs_disk"] = round(r["ops_per_s"] / limit, 2)
        elif r["op"] == "PUT":
            r["vs_disk"] = round(r["mb_per_s"] / disk["seq_write_fsync_mb_per_s"], 2)


def main_table(rows: list[dict[str, Any]]) -> str:
    head = [
        "op",
        "size",
        "conc",
        "target",
        "ops",
        "ops/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "srv CPU ms/op",
        "client CPU ms/op",
        "peak RSS MiB",
        "÷ SeaweedFS",
        "÷ disk",
    ]
    body = []
    for r in rows:
        rss = max((v for k, v in r["peak_rss_mib"].items() if k != "postgres"), default=0.0)
        body.append(
            [
                r["op"],
                r["size_label"],
                str(r["concurrency"]),
                TARGETS[r["target"]],
                str(r["ops"]),
                f"{r['ops_per_s']:.1f}",
                f"{r['mb_per_s']:.1f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['server_cpu_ms_per_op']:.2f}",
                f"{r['client_cpu_ms_per_op']:.2f}",
                f"{rss:.0f}",
                "—"
                if r["target"] == "weed" or r["vs_seaweed"] is None
                else f"{r['vs_seaweed']:.2f}x",
                "—" if r["vs_disk"] is None else f"{r['vs_disk']:.2f}x",
            ]
        )
    return md_table(head, body, left=4)


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = {(r["op"], r["size"], r["concurrency"], r["target"]): r for r in report["rows"]}
    out: list[dict[str, Any]] = []

    def ratio(name: str, key: tuple[str, int, int, str], want: float) -> None:
        r = rows.get(key)
        got = r["vs_seaweed"] if r else None
        out.append(
            {
                "goal": name,
                "target": f"≥ {want}x SeaweedFS",
                "measured": got,
                "met": got is not None and got >= want,
            }
        )

    ratio("4 KiB durable PUT, SE direct, c16", ("PUT", 4 * KiB, 16, "se"), 1.0)
    ratio("4 KiB durable PUT, ingester, c16", ("PUT", 4 * KiB, 16, "edge"), 0.7)
    ratio("4 KiB GET, SE direct, c16", ("GET", 4 * KiB, 16, "se"), 0.8)
    ratio("4 KiB GET, query, c16", ("GET", 4 * KiB, 16, "edge"), 0.5)
    for size in (MiB, 64 * MiB):
        for conc in CONCURRENCY:
            ratio(f"{human(size)} PUT MB/s, ingester, c{conc}", ("PUT", size, conc, "edge"), 1.5)
    for conc in CONCURRENCY:
        ratio(f"1 MiB GET, SE direct, c{conc}", ("GET", MiB, conc, "se"), 1.0)
        ratio(f"1 MiB GET, query, c{conc}", ("GET", MiB, conc, "edge"), 0.6)
    big = report.get("big_file", {}).get("edge")
    if big:
        peaks = {**big["peak_rss_mib_put"]}
        for k, v in big["peak_rss_mib_get"].items():
            peaks[k] = max(peaks.get(k, 0.0), v)
        services = {k: v for k, v in peaks.items() if k != "postgres"}
        worst = max(services, key=lambda k: services[k])
        out.append(
            {
                "goal": "every service's RSS while moving 1 GiB",
                "target": "< 200 MiB",
                "measured": f"{services[worst]} MiB ({worst})",
                "met": services[worst] < 200,
            }
        )
    s = report.get("search")
    if s:
        note = "" if s["files"] >= 1_000_000 else f" (at {s['files']:,} files, not 1M)"
        out.append(
            {
                "goal": "search p95 at 1M rows" + note,
                "target": "< 50 ms",
                "measured": f"{s['p95_ms_worst']} ms worst kind ({s['p95_worst_kind']})",
                "met": s["p95_ms_worst"] < 50,
            }
        )
    rb = report.get("rebuild")
    if rb:
        out.append(
            {
                "goal": "rebuild-index files/s",
                "target": "≥ 5,000",
                "measured": f"{rb['files_per_s']} ({rb['files_per_s_net_of_startup']} "
                "net of CLI start-up)",
                "met": rb["files_per_s"] >= 5000,
            }
        )
    if report.get("scale"):
        out += report["scale"]["goals"]
    return out


def goals_table(items: list[dict[str, Any]]) -> str:
    body = []
    for g in items:
        m = g["measured"]
        shown = "—" if m is None else (f"{m:.2f}x" if isinstance(m, float) else str(m))
        body.append([g["goal"], g["target"], shown, "met" if g["met"] else "NOT met"])
    return md_table(["goal", "wanted", "measured", ""], body, left=4)


def machine(work: Path) -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "memory_gib": round(psutil.virtual_memory().total / GiB, 1),
        "data_dir": str(work),
        "filesystem": filesystem_type(work),
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- main ----------------------------------------------------------------------------------
def _out_of_time(signum: int, frame: FrameType | None) -> None:
    raise OutOfTime("the benchmark ran out of time (--timeout)")


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def find_py_spy(given: str | None) -> str | None:
    for candidate in (given, os.environ.get("PY_SPY"), shutil.which("py-spy")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small counts (~5 min)")
    p.add_argument("--smoke", action="store_true", help="tiny counts: checks the harness only")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=ROOT / ".artstore" / "bench",
        help="a fresh folder is made (and removed) in it; default .artstore/bench",
    )
    p.add_argument(
        "--database-url",
        default="",
        help="PostgreSQL for `artstore up` (a scratch database is made on it); "
        "default: the up's embedded PostgreSQL",
    )
    p.add_argument(
        "--search-rows",
        type=int,
        default=None,
        help="generated files for the search test (default 1M; quick 200k)",
    )
    p.add_argument("--search-rounds", type=int, default=None)
    p.add_argument(
        "--rebuild-files",
        type=int,
        default=None,
        help="attr files for rebuild-index (default 20k; quick 5k)",
    )
    p.add_argument(
        "--scale-files",
        type=int,
        default=None,
        help="files of the one-SE scale section (default 1M; quick 100k; smoke 2,000; 0 skips)",
    )
    p.add_argument("--big-file", type=int, default=GiB, help="bytes of the RSS file (1 GiB)")
    p.add_argument(
        "--py-spy",
        default=None,
        help="py-spy binary: profile the SE and the ingester in the 4 KiB c16 PUT "
        "rows (also $PY_SPY or on PATH)",
    )
    p.add_argument("--json", type=Path, default=None, help="default bench/results/<timestamp>.json")
    p.add_argument("--timeout", type=int, default=None, help="seconds (default 1800; quick 900)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "default"
    args.quick = args.quick or args.smoke
    search_rows = args.search_rows or (200_000 if args.quick else 1_000_000)
    search_rounds = args.search_rounds or (10 if args.quick else 30)
    rebuild_files = args.rebuild_files or (5_000 if args.quick else 20_000)
    scale_files = (
        args.scale_files
        if args.scale_files is not None
        else {"smoke": 2_000, "quick": 100_000}.get(mode, 1_000_000)
    )
    # The scale section generates and walks its files several times: ~2 ms a file.
    timeout = args.timeout or (900 if args.quick else 1800) + scale_files // 500
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path: Path = args.json or ROOT / "bench" / "results" / f"{stamp}.json"

    args.data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.data_dir))
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.signal(signal.SIGTERM, _terminated)
    signal.alarm(timeout)
    started = time.monotonic()

    scratch_db = ""
    database_url = args.database_url
    up: ArtStoreUp | None = None
    weed: AnonymousSeaweed | None = None
    watch: Watch | None = None
    ok = False
    report: dict[str, Any] = {"benchmark": "bench/run", "mode": mode, "date": stamp}
    try:
        if shutil.disk_usage(work).free < 40 * GiB:
            raise BenchError(f"{work} has less than 40 GiB free")
        report["machine"] = machine(work)
        log(f"{mode} run in {work}; load average {report['machine']['load_avg_start']}")

        if database_url:
            from artstore.cli.devdb import create_database, with_database

            scratch_db = f"artstore_bench_{uuid.uuid4().hex[:6]}"
            create_database(database_url, scratch_db, drop_first=True)
            database_url = with_database(database_url, scratch_db)
        log("disk limits (before anything else runs) …")
        scale = 256 * MiB if args.quick else GiB
        disk: dict[str, Any] = {"durable_4k_creates": {}}
        creates = 300 if args.quick else 1500
        for conc in CONCURRENCY:
            disk["durable_4k_creates"][str(conc)] = disk_durable_creates(
                work / "disk-creates", creates * (1 if conc == 1 else 2), conc
            )
        disk["seq_write_fsync_mb_per_s"] = round(disk_seq_write(work, scale), 1)
        disk["seq_write_bytes"] = scale
        report["disk"] = disk
        log(f"disk: {disk}")

        log("starting ArtStore (artstore up) and SeaweedFS …")
        up = ArtStoreUp(work / "artstore", database_url)
        up.start()
        t_up = time.monotonic()
        weed = AnonymousSeaweed(bucket=BUCKET, fsync=True)
        shutil.rmtree(weed.root, ignore_errors=True)  # keep its data on the same disk
        weed.root = Path(tempfile.mkdtemp(prefix="weed-", dir=work))
        weed.start()
        log(f"SeaweedFS S3 on {weed.endpoint} (bucket '{BUCKET}' fsync'd)")
        up.wait_ready(timeout=300)
        report["artstore_up_seconds"] = round(time.monotonic() - t_up, 1)
        log(f"ArtStore up after {report['artstore_up_seconds']} s: {up.pids}")

        watch = Watch()
        assert weed.proc is not None
        watch.add("weed", weed.proc.pid)
        for name, pid in up.pids.items():
            watch.add(name, pid, tree=name == "postgres")
        watch.start()

        py_spy = find_py_spy(args.py_spy)
        profile = {}
        if py_spy:
            profile = {
                ("PUT", 4 * KiB, 16, "se"): (py_spy, up.pids[SE_NAME]),
                ("PUT", 4 * KiB, 16, "edge"): (py_spy, up.pids["ingester"]),
            }
        load = Load(up, weed, Payloads())
        bench = Bench(load, watch, ROUNDS[mode], COUNTS[mode], profile, work)
        bench.batch_seconds = BATCH_SECONDS[mode]
        for target in TARGETS:  # warm-up: imports, JWKS, connections, first folders
            res = run_batch(*load.address(target, "PUT"), load.puts(target, 4 * KiB, 32), 4)
            run_batch(*load.address(target, "GET"), load.gets(target, 4 * KiB, res.results), 4)
        for size in SIZES:
            for conc in CONCURRENCY:
                bench.case(size, conc)
        report["rows"] = bench.rows
        report["profiles"] = bench.profiles
        report["big_file"] = bench.big_file(args.big_file)

        log(f"search: {search_rows:,} generated files into the catalog …")
        report["search"] = search_bench(up, search_rows, search_rounds)
        log(
            f"search p50 (median of kinds) {report['search']['p50_ms_all']} ms, worst p95 "
            f"{report['search']['p95_ms_worst']} ms ({report['search']['p95_worst_kind']})"
        )
        log(f"rebuild-index over {rebuild_files:,} attr files …")
        report["rebuild"] = rebuild_bench(up, work, rebuild_files, py_spy)
        log(f"rebuild: {report['rebuild']}")
        if scale_files:
            log(f"scale: one SE over {scale_files:,} files …")
            report["scale"] = scale_bench(up, work, scale_files)

        report["peak_rss_mib"] = watch.peaks()
        report["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        report["seconds_total"] = round(time.monotonic() - started, 1)
        add_ratios(report["rows"], disk)
        report["goals"] = goals(report)
        print_report(report)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        for raw in work.glob("profile-*.txt"):
            shutil.copy(raw, json_path.with_name(f"{json_path.stem}-{raw.name}"))
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        log(f"results written to {json_path}")
        ok = True
    except (BenchError, TimeoutError, RuntimeError, OSError, httpx.HTTPError) as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if up is not None:
            print(f"--- artstore up (tail) ---\n{up.tail()}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the cleanup is not to be interrupted
        cleanup(watch, up, weed, work, args.database_url, scratch_db)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return 0 if ok else 1


def cleanup(
    watch: Watch | None,
    up: ArtStoreUp | None,
    weed: AnonymousSeaweed | None,
    work: Path,
    database_url: str,
    scratch_db: str,
) -> None:
    steps: list[tuple[str, Callable[[], None]]] = []
    if watch is not None:
        steps.append(("watch", watch.stop))
    if up is not None:
        steps.append(("artstore up", up.stop))
    if weed is not None:
        steps.append(("SeaweedFS", weed.stop))
    if scratch_db:
        from artstore.cli.devdb import drop_database

        steps.append(("scratch database", lambda: drop_database(database_url, scratch_db)))
    steps.append(("work dir", lambda: shutil.rmtree(work, ignore_errors=True)))
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # keep cleaning up
            print(f"cleanup of {name} failed: {exc}", file=sys.stderr)
    log("cleaned up")


def print_report(report: dict[str, Any]) -> None:
    m = report["machine"]
    d = report["disk"]
    print()
    print(
        f"ArtStore vs SeaweedFS ({report['mode']} run, {report['date']}); {m['nproc']} CPUs, "
        f"{m['filesystem']} at {m['data_dir']}; load average {m['load_avg_start']} -> "
        f"{m['load_avg_end']}"
    )
    print(
        f"disk: fsync'd sequential write {d['seq_write_fsync_mb_per_s']} MB/s; durable 4 KiB "
        f"creates {d['durable_4k_creates']['1']['ops_per_s']}/s at c1, "
        f"{d['durable_4k_creates']['16']['ops_per_s']}/s at c16"
    )
    print()
    print(main_table(report["rows"]))
    print()
    for target, b in report["big_file"].items():
        print(
            f"1 GiB via {TARGETS[target]}: PUT {b['put_mb_per_s']} MB/s, GET "
            f"{b['get_mb_per_s']} MB/s; peak RSS MiB PUT {b['peak_rss_mib_put']}, "
            f"GET {b['peak_rss_mib_get']}"
        )
    s = report["search"]
    print(
        f"search at {s['files']:,} files ({s['catalog_rows']:,} rows): median p50 "
        f"{s['p50_ms_all']} ms, worst p95 {s['p95_ms_worst']} ms ({s['p95_worst_kind']})"
    )
    rb = report["rebuild"]
    print(
        f"rebuild-index: {rb['files']:,} files in {rb['command_seconds']} s = "
        f"{rb['files_per_s']} files/s ({rb['files_per_s_net_of_startup']} net of the "
        f"{rb['empty_command_seconds']} s CLI start-up)"
    )
    if report.get("scale"):
        import se_scale

        print()
        print(se_scale.report_text(report["scale"]))
        print()
    print(f"peak RSS MiB over the run: {report['peak_rss_mib']}")
    profiles = dict(report.get("profiles", {}))
    if report["rebuild"].get("profile"):
        profiles["rebuild-index"] = report["rebuild"]["profile"]
    for key, prof in profiles.items():
        print(f"\npy-spy, {key} ({prof.get('busy_samples', 0)} busy samples), self %:")
        for name, pct in prof.get("self_pct", [])[:8]:
            print(f"  {pct:5.1f}  {name}")
        print("  inclusive % (own code):")
        for name, pct in prof.get("inclusive_pct", [])[:10]:
            print(f"  {pct:5.1f}  {name}")
    print()
    print(goals_table(report["goals"]))
    print(f"\ntotal {report['seconds_total']} s")


if __name__ == "__main__":
    sys.exit(main())
