"""A storage element at scale (issue 19): RSS, pass rates, list latency and start-up
time of one SE holding ``--files`` files (default 1,000,000).

1. Writes ``--files`` small blobs (64-512 distinct bytes) and their attr files with
   the SE's own model (``Attr.seal``, ``layout.storage_name``) into a scratch data
   directory, ~2,000 files per hour folder, with a pool of processes (no fsync). Most
   are active; ``--expired-per-mille`` are temporary files whose ``expires_at`` is
   past (GC expires them), ``--deleted-per-mille`` tombstones older than the reclaim
   age (GC removes them).
2. Creates a scratch database on ``--database-url``, migrates it to head and loads the
   matching catalog rows (``attr.row.row_of``) by COPY with the table's secondary
   indexes dropped, then builds them again and ANALYZEs.
3. Runs the SE as a process (``<--python> -m artstore.cli.main serve
   storage-element``; one uvicorn worker) with GC, reconcile and scrub off, trusting a
   stand-in token issuer, and measures, RSS sampled every 0.1 s (the SE and any
   children):

   - time to ready (``GET /health/ready`` 200) from the process start: first start,
     after a clean stop (SIGTERM) and after SIGKILL; RSS at rest (ready + 5 s);
   - ``GET /api/v1/files?limit=100`` at offset 0 and a deep offset (median of up to
     5; at most ``--list-seconds`` per kind), with the catalog reachable and with the
     SE started on an unreachable ``DATABASE_URL`` (a closed port), peak RSS;
   - ``POST /api/v1/maintenance/reconcile`` and ``/gc``: wall time, files/s (files
     walked per second), peak RSS.

   Each goal of the issue is printed as met / NOT met with the measured value.

    .venv/bin/python bench/se_scale.py [--files 1000000] [--python PATH] [--keep DIR]
        [--database-url URL] [--skip reconcile,gc,restarts,no-catalog] [--json out.json]

``--python`` runs the SE with another interpreter (a git worktree's venv:
``/work/wt-index/.venv/bin/python``); the data and the catalog are still made by this
checkout's code. ``--keep DIR`` keeps the generated data directory in DIR and reuses it
on the next run when it holds at least ``--files`` files (generating 1M files takes
minutes); GC changes the set, so the table says whether the set was fresh. The SE, the
scratch database and (without ``--keep``) the data directory are removed at the end,
also on Ctrl-C, SIGTERM, an error and when ``--timeout`` runs out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT), str(ROOT / "bench")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import httpx  # noqa: E402
from _common import BenchError, Watch  # type: ignore[import-not-found]  # noqa: E402

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/postgres"
SE_ID = "se-scale"
MIB = 1024 * 1024
PER_FOLDER = 2000
START = datetime(2025, 1, 1, tzinfo=UTC)
MARKER = ".se-scale.json"  # in a kept data dir: what it holds
TASK_FOLDERS = 5  # hour folders per pool task (10,000 files)
READY_TIMEOUT = 600.0
# The goals.
RSS_GOAL_MIB = 256
PASS_GOAL_FILES_PER_S = 20_000
LIST_GOAL_MS = 100
READY_GOAL_S = 10


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- the files -----------------------------------------------------------------------------
def _file(i: int, seed: int, expired_pm: int, deleted_pm: int) -> tuple[str, bytes, Any]:
    """File ``i``: (storage path, blob, sealed Attr) built with the SE's own code."""
    from artstore.storage_element.attr.model import Attr
    from artstore.storage_element.layout import hour_folder, storage_name

    folder, slot = divmod(i, PER_FOLDER)
    at = START + timedelta(hours=folder, seconds=slot * 3600 // PER_FOLDER)
    fid = uuid.UUID(
        bytes=hashlib.md5(f"{seed}:{i}".encode(), usedforsecurity=False).digest(), version=4
    )
    size = 64 + (i * 37) % 449
    body = (f"scale {seed} file {i} " * (size // 16 + 2)).encode()[:size]
    rel = f"{hour_folder(at)}/{storage_name(f'scale_{i}.bin', 'bench', at, fid)}"
    band = i % 1000
    temporary = band < expired_pm
    deleted = expired_pm <= band < expired_pm + deleted_pm
    attr = Attr(
        file_id=str(fid),
        storage_path=rel,
        original_filename=f"scale_{i}.bin",
        content_type="application/octet-stream",
        size=size,
        checksum="sha256:" + hashlib.sha256(body).hexdigest(),
        uploaded_by="bench",
        uploaded_at=at,
        updated_at=at,
        version=2 if deleted else 1,
        status="deleted" if deleted else "active",
        retention_policy="temporary" if temporary else "permanent",
        ttl_days=1 if temporary else None,
        expires_at=at + timedelta(days=1) if temporary else None,  # long past
        description=f"scale file {i}",
        tags=["scale", f"t{i % 10}"],
        metadata={"project": f"p{i % 100}"},
    )
    sealed, raw = attr.seal()
    return rel, body, (sealed, raw)


@dataclass(frozen=True)
class Task:
    files_dir: str
    first: int  # generate files [first, last); or read folders when `folders` is given
    last: int
    seed: int
    expired_pm: int
    deleted_pm: int
    dsn: str
    folders: tuple[str, ...] = ()


def _rows_of_folders(files_dir: Path, folders: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    from artstore.storage_element.attr.row import decode_row
    from artstore.storage_element.layout import ATTR_SUFFIX

    for folder in folders:
        with os.scandir(files_dir / folder) as it:
            for entry in it:
                if entry.name.endswith(ATTR_SUFFIX):
                    with open(entry.path, "rb") as f:
                        yield decode_row(f.read())


def _run_task(task: Task) -> int:
    """One pool task: write (or read back) its files, COPY their catalog rows."""
    from artstore.storage_element.attr.row import ROW_COLUMNS, row_of

    files_dir = Path(task.files_dir)
    rows: list[tuple[Any, ...]] = []
    if task.folders:
        rows = [(SE_ID, *r) for r in _rows_of_folders(files_dir, task.folders)]
    else:
        made: set[str] = set()
        for i in range(task.first, task.last):
            rel, body, (attr, raw) = _file(i, task.seed, task.expired_pm, task.deleted_pm)
            folder = rel.rsplit("/", 1)[0]
            if folder not in made:
                (files_dir / folder).mkdir(parents=True, exist_ok=True)
                made.add(folder)
            with open(files_dir / rel, "wb") as f:
                f.write(body)
            with open(files_dir / (rel + ".attr.json"), "wb") as f:
                f.write(raw)
            rows.append((SE_ID, *row_of(attr)))
    if task.dsn:
        asyncio.run(_copy_rows(task.dsn, rows, ("storage_element_id", *ROW_COLUMNS)))
    return len(rows)


async def _copy_rows(dsn: str, rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "files", schema_name="catalog", records=rows, columns=columns
        )
    finally:
        await conn.close()


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and cleans up


def fill(
    data_dir: Path,
    files: int,
    dsn: str,
    *,
    generate: bool,
    seed: int = 19,
    expired_pm: int = 10,
    deleted_pm: int = 10,
    processes: int = 2,
) -> int:
    """Write ``files`` files into ``data_dir/files`` (``generate``) or read the ones there
    back, and COPY their rows into ``dsn``'s catalog when given. Returns the files done."""
    files_dir = data_dir / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    if generate:
        step = PER_FOLDER * TASK_FOLDERS
        tasks = [
            Task(str(files_dir), a, min(a + step, files), seed, expired_pm, deleted_pm, dsn)
            for a in range(0, files, step)
        ]
    else:
        folders = sorted(
            str(p.relative_to(files_dir)) for p in files_dir.glob("*/*/*/*") if p.is_dir()
        )
        tasks = [
            Task(str(files_dir), 0, 0, seed, 0, 0, dsn, tuple(folders[a : a + TASK_FOLDERS]))
            for a in range(0, len(folders), TASK_FOLDERS)
        ]
    done = 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes, initializer=_init_worker) as pool:
        try:
            for n in pool.imap_unordered(_run_task, tasks):
                done += n
                if done % 100_000 < n:
                    say(f"  {done:,} files")
        except BaseException:
            pool.terminate()
            raise
    return done


# -- the catalog ---------------------------------------------------------------------------
async def _drop_indexes(dsn: str) -> list[str]:
    """Drop catalog.files' secondary indexes (a bulk build is much faster than 1M
    insertions into GIN and trigram indexes); returns their definitions."""
    import asyncpg
    from search_latency import drop_secondary_indexes  # type: ignore[import-not-found]

    conn = await asyncpg.connect(dsn)
    try:
        return list(await drop_secondary_indexes(conn))
    finally:
        await conn.close()


async def _build_indexes(dsn: str, defs: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for sql in defs:
            await conn.execute(sql)
        await conn.execute("VACUUM ANALYZE catalog.files")
    finally:
        await conn.close()


def make_catalog(admin_url: str, name: str) -> str:
    """A scratch database migrated to head; returns its plain libpq URL."""
    from artstore.cli.devdb import create_database, with_database
    from artstore.cli.migrate import upgrade

    create_database(admin_url, name, drop_first=True)
    url = with_database(admin_url, name)
    upgrade(url, "head")
    return url.replace("postgresql+asyncpg://", "postgresql://")


# -- the SE process ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SE:
    """``<python> -m artstore.cli.main serve storage-element`` on a data dir."""

    def __init__(self, python: str, data_dir: Path, jwks_url: str, log_path: Path) -> None:
        self.python = python
        self.data_dir = data_dir
        self.jwks_url = jwks_url
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, database_url: str) -> float:
        """Start it; seconds until /health/ready answers 200."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SE_")}
        env.update(
            {
                "SE_ID": SE_ID,
                "SE_MODE": "rw",
                "SE_DATA_DIR": str(self.data_dir),
                "SE_RESERVE_BYTES": "0",
                "SE_GC_INTERVAL": "0",
                "SE_RECONCILE_INTERVAL": "0",
                "SE_SCRUB_BYTES_PER_SEC": "0",
                "DATABASE_URL": database_url,
                "JWKS_URL": self.jwks_url,
                "JWT_ISSUER": "artstore-test",
                "JWT_AUDIENCE": "artstore",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "WARNING",
            }
        )
        # The interpreter's own checkout (…/.venv/bin/python -> …) as the working dir.
        # Not resolved: a venv's python is a link to the base interpreter.
        here = Path(self.python).absolute()
        cwd = here.parents[2] if here.parent.parent.name == ".venv" else ROOT
        cmd = [self.python, "-m", "artstore.cli.main", "serve", "storage-element"]
        with open(self.log_path, "ab") as log:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(
                [*cmd, "--port", str(self.port)],
                env=env,
                cwd=cwd if cwd.is_dir() else ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = t0 + READY_TIMEOUT
        with httpx.Client(timeout=2.0) as c:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise BenchError(f"the SE exited with {self.proc.returncode}:\n{self.log()}")
                with contextlib.suppress(httpx.HTTPError):
                    if c.get(f"{self.url}/health/ready").status_code == 200:
                        return time.perf_counter() - t0
                time.sleep(0.05)
        raise BenchError(f"the SE was not ready in {READY_TIMEOUT:.0f} s:\n{self.log()}")

    def stop(self, kill: bool = False, timeout: float = 60.0) -> float:
        """SIGTERM (or SIGKILL); seconds until it exited."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return 0.0
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        return time.perf_counter() - t0

    def log(self, n: int = 4000) -> str:
        with contextlib.suppress(FileNotFoundError):
            return self.log_path.read_text(errors="replace")[-n:]
        return ""


# -- measuring -----------------------------------------------------------------------------
def _watch(se: SE) -> Watch:
    assert se.proc is not None
    w = Watch(interval=0.1)
    w.add("se", se.proc.pid, tree=True)
    return w.start()


def _rss_now(w: Watch) -> float:
    return round(float(w.groups["se"].rss()) / MIB, 1)


def timed_call(w: Watch, call: Callable[[], httpx.Response], what: str) -> tuple[float, float, Any]:
    """(seconds, peak RSS MiB during it, the answer's JSON)."""
    w.begin_window()
    t0 = time.perf_counter()
    r = call()
    seconds = time.perf_counter() - t0
    peak = w.window()["se"]
    if r.status_code != 200:
        raise BenchError(f"{what} answered {r.status_code}: {r.text[:300]}")
    return seconds, peak, r.json()


def measure_list(client: httpx.Client, w: Watch, offset: int, budget_s: float) -> dict[str, Any]:
    """GET /api/v1/files?limit=100 at ``offset``: up to 5 times, no new one after
    ``budget_s``; median latency and the peak RSS."""
    times: list[float] = []
    peak = 0.0
    total = None
    t_end = time.perf_counter() + budget_s
    while len(times) < 5 and (not times or time.perf_counter() < t_end):
        s, p, body = timed_call(
            w,
            lambda: client.get("/api/v1/files", params={"limit": 100, "offset": offset}),
            f"list at offset {offset}",
        )
        if len(body["items"]) == 0 and offset < (body.get("total") or 0):
            raise BenchError(f"list at offset {offset} gave no items")
        times.append(s)
        peak = max(peak, p)
        total = body.get("total")
    return {
        "offset": offset,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "requests": len(times),
        "peak_rss_mib": peak,
        "total": total,
    }


def wait_index_filled(client: httpx.Client, cap_s: float = 1800.0) -> float:
    """Seconds until the file index is filled: after a rebuild (an unclean stop) it learns
    every row's status from the attrs in the background; lists come from the catalog
    meanwhile, or wait and answer 503 without one (architecture §5.8)."""
    t0 = time.perf_counter()
    while True:
        r = client.get("/api/v1/maintenance/status")
        if r.status_code != 200 or time.perf_counter() - t0 > cap_s:
            raise BenchError(f"maintenance status answered {r.status_code}: {r.text[:300]}")
        if r.json()["index"]["filled"]:
            return time.perf_counter() - t0
        time.sleep(1)


def run_pass(client: httpx.Client, w: Watch, path: str, files: int) -> dict[str, Any]:
    s, peak, body = timed_call(w, lambda: client.post(path), f"POST {path}")
    walked = int(body.get("files_checked", files)) if isinstance(body, dict) else files
    out = {
        "seconds": round(s, 2),
        "files_walked": walked,
        "files_per_s": round(walked / s) if s > 0 else None,
        "peak_rss_mib": peak,
    }
    if "expired" in body:
        out.update({k: body[k] for k in ("expired", "reclaimed", "bytes_freed")})
    if "issues" in body:
        out["issues"] = len(body["issues"])
        out["catalog"] = body.get("catalog")
    return out


# -- the run -------------------------------------------------------------------------------
def _load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _forget_runs(data_dir: Path) -> None:
    """Remove what an SE run left in a data dir of this benchmark besides the files
    (journal, temp files, quarantine, mode, scrub position, uploads)."""
    for entry in data_dir.iterdir() if data_dir.is_dir() else ():
        if entry.name in ("files", MARKER):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink()


def _prepare_data(args: argparse.Namespace, data_dir: Path, dsn: str) -> tuple[int, str]:
    """Generated (or reused) files with their catalog rows; (files, how the set came)."""
    marker = data_dir / MARKER
    if data_dir.is_dir() and any(data_dir.iterdir()) and not marker.exists():
        raise BenchError(f"{data_dir} is not empty and not a data dir of this benchmark")
    known: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        known = json.loads(marker.read_text())
    defs = asyncio.run(_drop_indexes(dsn)) if dsn else []
    t0 = time.perf_counter()
    if known.get("generated") == args.files:
        say(f"reusing {data_dir} ({known}); reading its attr files into the catalog …")
        files = fill(data_dir, args.files, dsn, generate=False)
        _forget_runs(data_dir)  # the first start then starts from the files alone
        state = "reused, GC already ran on it" if known.get("gc_ran") else "reused, untouched"
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"generated": 0}))  # ours, even if cut short
        shutil.rmtree(data_dir / "files", ignore_errors=True)
        _forget_runs(data_dir)
        say(f"generating {args.files:,} files into {data_dir} …")
        files = fill(
            data_dir,
            args.files,
            dsn,
            generate=True,
            expired_pm=args.expired_per_mille,
            deleted_pm=args.deleted_per_mille,
        )
        marker.write_text(json.dumps({"generated": args.files, "gc_ran": False}))
        state = "fresh"
    gen_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    if dsn:
        asyncio.run(_build_indexes(dsn, defs))
    say(f"{files:,} files and rows in {gen_s:.0f} s; indexes built in "
        f"{time.perf_counter() - t1:.0f} s")  # fmt: skip
    return files, state


PHASES = ("reconcile", "gc", "restarts", "no-catalog")


def measure(
    python: str,
    data_dir: Path,
    work: Path,
    se_db_url: str,
    files: int,
    list_seconds: float,
    skip: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    from tests.support.issuer import TestIssuer

    issuer = TestIssuer()
    se = SE(python, data_dir, issuer.jwks_url, work / "se.log")
    out: dict[str, Any] = {"ready_s": {}}
    w: Watch | None = None
    client: httpx.Client | None = None
    try:
        token = issuer.token(ttl=24 * 3600)
        say("starting the SE (first start) …")
        out["ready_s"]["first start"] = round(se.start(se_db_url), 2)
        w = _watch(se)
        client = httpx.Client(
            base_url=se.url, headers={"Authorization": f"Bearer {token}"}, timeout=3600
        )
        time.sleep(5)
        out["rss_at_rest_mib"] = _rss_now(w)
        deep = min(50_000, max(0, files // 2))
        say(f"ready in {out['ready_s']['first start']} s; RSS at rest "
            f"{out['rss_at_rest_mib']} MiB; lists …")  # fmt: skip
        out["list_catalog"] = [measure_list(client, w, o, list_seconds) for o in (0, deep)]
        say(f"list (catalog): {out['list_catalog']}")
        if "reconcile" not in skip:
            say("reconcile …")
            out["reconcile"] = run_pass(client, w, "/api/v1/maintenance/reconcile", files)
            say(f"reconcile: {out['reconcile']}")
        if "gc" not in skip:
            say("gc …")
            out["gc"] = run_pass(client, w, "/api/v1/maintenance/gc", files)
            with contextlib.suppress(OSError, ValueError):
                marker = data_dir / MARKER
                marker.write_text(json.dumps({**json.loads(marker.read_text()), "gc_ran": True}))
            say(f"gc: {out['gc']}")
        out["rss_after_passes_mib"] = _rss_now(w)
        out["peak_rss_mib"] = w.peaks()["se"]
        w.stop()
        out["stop_s"] = round(se.stop(), 2)
        if "restarts" not in skip:
            out["ready_s"]["after SIGTERM"] = round(se.start(se_db_url), 2)
            se.stop(kill=True)
            out["ready_s"]["after SIGKILL"] = round(se.start(se_db_url), 2)
            # Lists from the index once it is filled again (the rebuild's background fill).
            out["index_fill_after_sigkill_s"] = round(wait_index_filled(client), 1)
            w = _watch(se)
            out["list_index"] = [measure_list(client, w, o, list_seconds) for o in (0, deep)]
            out["peak_rss_mib"] = max(out["peak_rss_mib"], w.peaks()["se"])
            w.stop()
            se.stop()
            filled = out["index_fill_after_sigkill_s"]
            say(f"restarts: {out['ready_s']}; index filled {filled} s after")
            say(f"list (index filled): {out['list_index']}")
        if "no-catalog" in skip:
            return out
        say("now without a reachable catalog …")
        closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
        out["ready_s"]["catalog unreachable"] = round(se.start(closed), 2)
        w = _watch(se)
        time.sleep(5)
        out["rss_at_rest_no_catalog_mib"] = _rss_now(w)
        out["index_fill_no_catalog_s"] = round(wait_index_filled(client), 1)
        out["list_no_catalog"] = [measure_list(client, w, o, list_seconds) for o in (0, deep)]
        say(f"list (no catalog): {out['list_no_catalog']}")
        out["peak_rss_mib"] = max(out["peak_rss_mib"], w.peaks()["se"])
    finally:
        if client is not None:
            client.close()
        if w is not None:
            w.stop()
        se.stop()
        issuer.close()
    return out


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals in bench/run.py's form (goal, target, measured, met)."""
    n = r["files"]
    note = "" if n >= 1_000_000 else f" (at {n:,} files, not 1M)"
    lists = r["list_catalog"] + r.get("list_index", []) + r.get("list_no_catalog", [])
    list_peak = max(x["peak_rss_mib"] for x in lists)
    passes = [name for name in ("gc", "reconcile") if name in r]
    out = [
        {"goal": "SE RSS at rest" + note, "target": f"< {RSS_GOAL_MIB} MiB",
         "measured": f"{r['rss_at_rest_mib']} MiB", "met": r["rss_at_rest_mib"] < RSS_GOAL_MIB},
    ]  # fmt: skip
    for name, peak in (*((p, r[p]["peak_rss_mib"]) for p in passes), ("list", list_peak)):
        out.append({"goal": f"SE RSS during {name}" + note, "target": f"< {RSS_GOAL_MIB} MiB",
                    "measured": f"{peak} MiB", "met": peak < RSS_GOAL_MIB})  # fmt: skip
    for name in passes:
        rate = r[name]["files_per_s"] or 0
        out.append({"goal": f"{name} pass files/s" + note,
                    "target": f"≥ {PASS_GOAL_FILES_PER_S:,}",
                    "measured": f"{rate:,}", "met": rate >= PASS_GOAL_FILES_PER_S})  # fmt: skip
    for key, label in (
        ("list_catalog", "first start, catalog reachable"),
        ("list_index", "index filled, catalog reachable"),
        ("list_no_catalog", "no catalog"),
    ):
        if key not in r:
            continue
        worst = max(r[key], key=lambda x: x["median_ms"])
        out.append({"goal": f"list page, {label}" + note, "target": f"< {LIST_GOAL_MS} ms",
                    "measured": f"{worst['median_ms']} ms (offset {worst['offset']:,})",
                    "met": worst["median_ms"] < LIST_GOAL_MS})  # fmt: skip
    slowest = max(r["ready_s"], key=lambda k: r["ready_s"][k])
    out.append({"goal": "SE ready after start" + note, "target": f"< {READY_GOAL_S} s",
                "measured": f"{r['ready_s'][slowest]} s ({slowest})",
                "met": r["ready_s"][slowest] < READY_GOAL_S})  # fmt: skip
    return out


def md_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def report_text(r: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    for k, v in r["ready_s"].items():
        rows.append([f"ready, {k}", f"{v} s", ""])
    rows.append(["clean stop (SIGTERM to exit)", f"{r['stop_s']} s", ""])
    rows.append(["RSS at rest (ready + 5 s)", f"{r['rss_at_rest_mib']} MiB", ""])
    rows.append(["RSS after the passes", f"{r['rss_after_passes_mib']} MiB", ""])
    if "rss_at_rest_no_catalog_mib" in r:
        rows.append(["RSS at rest, no catalog", f"{r['rss_at_rest_no_catalog_mib']} MiB", ""])
    for key, label in (
        ("index_fill_after_sigkill_s", "index filled, after the SIGKILL start"),
        ("index_fill_no_catalog_s", "first list answered, no catalog (after ready + 5 s)"),
    ):
        if key in r:
            rows.append([label, f"{r[key]} s", "rows' status read from the attrs"])
    for name in (n for n in ("reconcile", "gc") if n in r):
        p = r[name]
        extra = (
            f"expired {p.get('expired')}, reclaimed {p.get('reclaimed')}"
            if name == "gc"
            else f"{p.get('issues', 0)} issues"
        )
        rows.append([f"{name} pass", f"{p['seconds']} s, {p['files_per_s']:,} files/s",
                     f"peak RSS {p['peak_rss_mib']} MiB; {p['files_walked']:,} files; "
                     f"{extra}"])  # fmt: skip
    for key, label in (
        ("list_catalog", "first start"),
        ("list_index", "index filled"),
        ("list_no_catalog", "no catalog"),
    ):
        for x in r.get(key, []):
            rows.append([f"list limit=100 offset {x['offset']:,} ({label})",
                         f"{x['median_ms']} ms median",
                         f"max {x['max_ms']} ms of {x['requests']}; peak RSS "
                         f"{x['peak_rss_mib']} MiB"])  # fmt: skip
    skipped = f"; skipped: {', '.join(r['skipped'])}" if r.get("skipped") else ""
    head = (
        f"SE at {r['files']:,} files ({r['set']}{skipped}); python {r['python']}; "
        f"load average {r['load_avg_start']} -> {r['load_avg_end']}; "
        f"generate+load {r['prepare_seconds']} s"
    )
    g = md_table(
        ["goal", "wanted", "measured", ""],
        [[x["goal"], x["target"], x["measured"], "met" if x["met"] else "NOT met"]
         for x in r["goals"]],
    )  # fmt: skip
    return "\n\n".join([head, md_table(["measure", "value", "detail"], rows), g])


def run_scale(
    files: int,
    *,
    python: str = sys.executable,
    database_url: str = DEFAULT_DB,
    parent: Path | None = None,
    keep: Path | None = None,
    list_seconds: float = 60.0,
    expired_per_mille: int = 10,
    deleted_per_mille: int = 10,
    skip: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The whole measurement (for bench/run.py): a dict with ``goals``. Cleans up what it
    made (the scratch database, the data unless ``keep``) however it ends."""
    from artstore.cli.devdb import drop_database

    args = argparse.Namespace(
        files=files, expired_per_mille=expired_per_mille, deleted_per_mille=deleted_per_mille
    )
    parent = parent or ROOT / ".artstore" / "bench"
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="se-scale-", dir=parent))
    data_dir = keep or work / "data"
    db_name = f"artstore_scale_{uuid.uuid4().hex[:8]}"
    created = False
    result: dict[str, Any] = {"benchmark": "se_scale", "files": files, "python": python,
                              "load_avg_start": _load_avg(), "skipped": sorted(skip)}  # fmt: skip
    try:
        say(f"scratch database {db_name} on {database_url} …")
        created = True
        dsn = make_catalog(database_url, db_name)
        t0 = time.perf_counter()
        n, state = _prepare_data(args, data_dir, dsn)
        result["files"], result["set"] = n, state
        result["prepare_seconds"] = round(time.perf_counter() - t0, 1)
        result.update(measure(python, data_dir, work, dsn, n, list_seconds, skip))
        result["load_avg_end"] = _load_avg()
        result["goals"] = goals(result)
        return result
    finally:
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup runs to its end
        if created:
            try:
                drop_database(database_url, db_name)
            except Exception as exc:  # keep cleaning up
                print(f"cleanup: dropping {db_name} failed: {exc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGINT, interrupt)


# -- main ----------------------------------------------------------------------------------
def _out_of_time(signum: int, frame: FrameType | None) -> None:
    raise BenchError("the benchmark ran out of time (--timeout)")


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--files", type=int, default=1_000_000)
    p.add_argument("--python", default=sys.executable, help="the SE's interpreter")
    p.add_argument("--database-url", default=DEFAULT_DB, help="server for a scratch database")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="keep the data dir here and reuse it next time")  # fmt: skip
    p.add_argument("--data-dir", type=Path, default=None,
                   help="parent of the scratch folder (default .artstore/bench)")  # fmt: skip
    p.add_argument("--list-seconds", type=float, default=60.0,
                   help="no new list request of a kind after this many s (default 60)")  # fmt: skip
    p.add_argument("--expired-per-mille", type=int, default=10)
    p.add_argument("--deleted-per-mille", type=int, default=10)
    p.add_argument("--skip", default="", help=f"comma-separated phases to leave out: "
                   f"{', '.join(PHASES)}")  # fmt: skip
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--timeout", type=int, default=7200)
    args = p.parse_args(argv)
    skip = frozenset(x.strip() for x in args.skip.split(",") if x.strip())
    if skip - set(PHASES):
        p.error(f"--skip takes {', '.join(PHASES)}, not {', '.join(sorted(skip - set(PHASES)))}")

    signal.signal(signal.SIGALRM, _out_of_time)
    signal.signal(signal.SIGTERM, _terminated)
    signal.alarm(args.timeout)
    try:
        result = run_scale(
            args.files,
            python=args.python,
            database_url=args.database_url,
            parent=args.data_dir,
            keep=args.keep.resolve() if args.keep else None,
            list_seconds=args.list_seconds,
            expired_per_mille=args.expired_per_mille,
            deleted_per_mille=args.deleted_per_mille,
            skip=skip,
        )
    except (BenchError, OSError, httpx.HTTPError) as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
    print()
    print(report_text(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
