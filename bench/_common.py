"""Shared pieces of the benchmarks: a lean HTTP/1.1 load client, process watching
(CPU and RSS of server processes), the disk's own limits, an anonymous SeaweedFS.

Imported by ``bench/run.py``; helpers already written for the older benches are
reused from there (``se_memory.human``/``filesystem_type``, ``se_backends.percentile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs installed
from se_backends import percentile  # type: ignore[import-not-found]
from se_memory import human  # type: ignore[import-not-found]

from tests.support.seaweed import SeaweedServer, free_port_pair

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
SEND_CHUNK = 1 * MiB

__all__ = ["GiB", "KiB", "MiB", "human", "percentile"]


class BenchError(Exception):
    """The benchmark could not run or a request failed."""


# -- request bodies ------------------------------------------------------------------------
class Payloads:
    """Distinct bodies of any size without holding them: one random block, 8-byte prefixes.

    Body ``i`` of ``size`` bytes is ``i`` as 8 bytes followed by the block's bytes
    8..size (the block repeats for sizes above it). Nothing compresses or deduplicates.
    """

    def __init__(self, block_size: int = 64 * MiB, seed: int = 7) -> None:
        import random

        self.block = memoryview(random.Random(seed).randbytes(block_size))

    def chunks(self, i: int, size: int) -> Iterator[memoryview | bytes]:
        yield (i.to_bytes(8, "big") + b"\0" * 8)[: min(8, size)]
        sent = min(8, size)
        while sent < size:
            offset = sent % len(self.block)
            n = min(SEND_CHUNK, size - sent, len(self.block) - offset)
            yield self.block[offset : offset + n]
            sent += n


# -- the load client -----------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    length: int
    body: bytes  # kept only for small answers (JSON)


class Conn:
    """One keep-alive HTTP/1.1 connection on asyncio streams: no per-request objects
    beyond the header bytes, the body sent from memoryviews, the answer counted (not
    kept) unless small. Chunked answers are decoded; ``Connection: close`` reconnects."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, limit=256 * KiB
            )
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Iterator[memoryview | bytes] | None = None,
        length: int = 0,
    ) -> Answer:
        reader, writer = await self._open()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {length}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        if body is not None:
            for chunk in body:
                writer.write(chunk)
                if len(chunk) >= 64 * KiB:
                    await writer.drain()
        await writer.drain()
        return await self._answer(reader, method)

    async def _answer(self, reader: asyncio.StreamReader, method: str) -> Answer:
        status_line = await reader.readline()
        if not status_line:
            self.close()
            raise BenchError("connection closed by the server")
        status = int(status_line.split()[1])
        hdrs: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        keep: list[bytes] = []
        total = 0
        if method == "HEAD" or status in (204, 304):
            pass
        elif "chunked" in hdrs.get("transfer-encoding", ""):
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += await self._body(reader, size, keep)
                await reader.readexactly(2)
        elif "content-length" in hdrs:
            total = await self._body(reader, int(hdrs["content-length"]), keep)
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, total, b"".join(keep))

    @staticmethod
    async def _body(reader: asyncio.StreamReader, size: int, keep: list[bytes]) -> int:
        left = size
        while left > 0:
            data = await reader.read(min(left, SEND_CHUNK))
            if not data:
                raise BenchError("answer body cut short")
            left -= len(data)
            if size <= 64 * KiB:
                keep.append(data)
        return size


# Job: given a connection, do one request; returns what the job wants to keep (e.g. an id).
Job = Callable[[Conn], Any]


@dataclass
class BatchResult:
    seconds: float
    latencies: list[float]
    results: list[Any]
    client_cpu_s: float


async def _run_batch(
    host: str, port: int, jobs: list[Job], concurrency: int, max_seconds: float
) -> BatchResult:
    conns = [Conn(host, port) for _ in range(concurrency)]
    latencies: list[float] = []
    results: list[Any] = [None] * len(jobs)
    next_job = iter(range(len(jobs)))

    async def worker(conn: Conn) -> None:
        for i in next_job:  # a shared iterator: each index is taken once
            if time.perf_counter() > deadline:
                return  # bounded in time too: the jobs not started are left out
            t0 = time.perf_counter()
            results[i] = await jobs[i](conn)
            latencies.append(time.perf_counter() - t0)

    cpu0 = _own_cpu()
    start = time.perf_counter()
    deadline = start + max_seconds
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for c in conns:
            c.close()
    seconds = time.perf_counter() - start
    return BatchResult(seconds, latencies, results, _own_cpu() - cpu0)


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def put_job(payloads: Payloads, i: int, size: int, path: str, headers: dict[str, str],
            method: str = "PUT", expect: int = 200,
            then: Callable[[bytes], Any] = bytes) -> Job:  # fmt: skip
    """Send body ``i`` of ``size`` bytes to ``path``; the job returns ``then`` of the
    answer's body (the JSON of an ArtStore upload; nothing useful from S3)."""

    async def job(conn: Conn) -> Any:
        a = await conn.request(
            method, path, {**headers, "Content-Type": "application/octet-stream"},
            payloads.chunks(i, size), size,
        )  # fmt: skip
        if a.status != expect:
            raise BenchError(f"{method} {path} answered {a.status}: {a.body[:300]!r}")
        return then(a.body)

    return job


def get_job(path: str, headers: dict[str, str], size: int) -> Job:
    """GET ``path``; the answer must be 200 with exactly ``size`` bytes."""

    async def job(conn: Conn) -> None:
        a = await conn.request("GET", path, headers)
        if a.status != 200 or a.length != size:
            raise BenchError(f"GET {path}: {a.status}, {a.length} bytes")

    return job


def p50_p99_ms(latencies: list[float]) -> tuple[float, float]:
    """Median and 99th percentile of single-request latencies, in ms."""
    return statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000


def run_batch(
    host: str, port: int, jobs: list[Job], concurrency: int, max_seconds: float = 3600
) -> BatchResult:
    """Run ``jobs`` on ``concurrency`` keep-alive connections (uvloop when available);
    no job starts after ``max_seconds`` (results of jobs not run stay None)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_run_batch(host, port, jobs, concurrency, max_seconds))
    return uvloop.run(_run_batch(host, port, jobs, concurrency, max_seconds))


# -- watching server processes -------------------------------------------------------------
@dataclass
class Group:
    """One server (a process, or a root and its children: PostgreSQL's backends)."""

    name: str
    proc: psutil.Process
    tree: bool = False
    peak_rss: int = 0
    window_peak: int = 0

    def procs(self) -> list[psutil.Process]:
        out = [self.proc]
        if self.tree:
            with contextlib.suppress(psutil.Error):
                out += self.proc.children(recursive=True)
        return out

    def cpu(self) -> float:
        total = 0.0
        for i, p in enumerate(self.procs()):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
                if i == 0:  # children that exited and were reaped (PostgreSQL backends)
                    total += t.children_user + t.children_system
        return total

    def rss(self) -> int:
        total = 0
        for p in self.procs():
            with contextlib.suppress(psutil.Error):
                total += int(p.memory_info().rss)
        return total


@dataclass
class Watch:
    """Samples the RSS of every group every ``interval`` s; CPU snapshots on demand."""

    interval: float = 0.1
    groups: dict[str, Group] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def add(self, name: str, pid: int, tree: bool = False) -> None:
        with self._lock:
            self.groups[name] = Group(name, psutil.Process(pid), tree)

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, name="rss-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        with self._lock:
            for g in self.groups.values():
                rss = g.rss()
                g.peak_rss = max(g.peak_rss, rss)
                g.window_peak = max(g.window_peak, rss)

    def cpu(self) -> dict[str, float]:
        with self._lock:
            return {name: g.cpu() for name, g in self.groups.items()}

    def begin_window(self) -> None:
        with self._lock:
            for g in self.groups.values():
                g.window_peak = g.rss()

    def window(self) -> dict[str, float]:
        self.sample()
        with self._lock:
            return {name: round(g.window_peak / MiB, 1) for name, g in self.groups.items()}

    def peaks(self) -> dict[str, float]:
        with self._lock:
            return {name: round(g.peak_rss / MiB, 1) for name, g in self.groups.items()}


# -- the disk's own limits -----------------------------------------------------------------
def disk_seq_write(directory: Path, total: int, file_size: int = 64 * MiB) -> float:
    """MB/s (10^6) writing ``total`` bytes as ``file_size`` files, each fsync'd."""
    block = os.urandom(SEND_CHUNK)
    start = time.perf_counter()
    for n in range(max(1, total // file_size)):
        path = directory / f"seq-{n}"
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            for _ in range(file_size // SEND_CHUNK):
                os.write(fd, block)
            os.fsync(fd)
        finally:
            os.close(fd)
    seconds = time.perf_counter() - start
    for n in range(max(1, total // file_size)):
        (directory / f"seq-{n}").unlink(missing_ok=True)
    return total / seconds / 1e6


def disk_durable_creates(directory: Path, count: int, concurrency: int) -> dict[str, float]:
    """Durable 4 KiB creates per second: temp file + write + fsync + rename + dir fsync."""
    directory.mkdir(parents=True, exist_ok=True)
    data = os.urandom(4 * KiB)
    latencies: list[float] = []

    def worker(w: int) -> None:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(w, count, concurrency):
                t0 = time.perf_counter()
                tmp = directory / f".tmp-{i}"
                fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, directory / f"f-{i}")
                os.fsync(dfd)
                latencies.append(time.perf_counter() - t0)
        finally:
            os.close(dfd)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(worker, w) for w in range(concurrency)]:
            f.result()
    seconds = time.perf_counter() - start
    for i in range(count):
        (directory / f"f-{i}").unlink(missing_ok=True)
    return {
        "ops_per_s": round(count / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }


# -- SeaweedFS with an anonymous S3 gateway ------------------------------------------------
class AnonymousSeaweed(SeaweedServer):
    """tests/support/seaweed.py's server without ``-s3.config``: no identities, so the
    gateway takes unsigned requests and the load client sends plain HTTP PUT/GET, as it
    does to ArtStore. Same flags otherwise (telemetry off, loopback, -volume.max=100,
    the bucket fsync'd through ``weed shell``, SIGTERM/20 s/SIGKILL, sockets removed)."""

    def start(self, timeout: float = 90.0) -> AnonymousSeaweed:
        for name in ("master", "volume", "filer", "s3"):
            port = free_port_pair()
            while port in self.ports.values():
                port = free_port_pair()
            self.ports[name] = port
        args = self.server_args(None)
        with open(self.root / "weed.log", "ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
            )
        try:
            self._wait_ready(timeout)
            self._make_bucket(timeout)
            if self.fsync:
                self._configure_fsync()
        except BaseException:
            self.stop()
            raise
        return self

    def _make_bucket(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.endpoint}/{self.bucket}"
        with httpx.Client(timeout=10) as c:
            while True:
                self._alive()
                try:
                    made = c.put(url)
                    probe = c.put(f"{url}/.probe", content=b"ok")
                    if made.status_code in (200, 409) and probe.status_code == 200:
                        c.delete(f"{url}/.probe")
                        return
                    problem = f"{made.status_code} {made.text[:200]} / {probe.status_code}"
                except httpx.HTTPError as exc:
                    problem = str(exc)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"bucket not usable: {problem}\n{self.log()}")
                time.sleep(0.3)


# -- py-spy --------------------------------------------------------------------------------
def py_spy_record(py_spy: str, out: Path, on_cpu: bool = False) -> list[str]:
    """Wall-clock sampling (``--idle``: threads blocked in fsync or on a lock count too),
    or with ``on_cpu`` only the threads on a CPU, at twice the rate."""
    if on_cpu:
        return [py_spy, "record", "--nonblocking", "-r", "200", "--format", "raw",
                "-o", str(out)]  # fmt: skip
    return [py_spy, "record", "--idle", "--nonblocking", "-r", "100", "--format", "raw",
            "-o", str(out)]  # fmt: skip


def process_cpu(p: psutil.Process | None) -> float:
    """User + system seconds of one process (0 for None)."""
    if p is None:
        return 0.0
    t = p.cpu_times()
    return float(t.user + t.system)


def postgres_cpu() -> float:
    """User + system seconds of every PostgreSQL process on the machine (the server's
    backends come and go, so the bench sums them all before and after a row)."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        try:
            if p.info["name"] and p.info["name"].startswith("postgres"):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            continue
    return total


class Profiler:
    """``py-spy record`` on one process while a row runs."""

    def __init__(self, py_spy: str, pid: int, out: Path, on_cpu: bool = False) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [*py_spy_record(py_spy, out, on_cpu), "-p", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)

    def finish(self, top: int = 15) -> dict[str, Any]:
        self.proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        return summarise_stacks(self.out, top)


# Leaves that are a thread or the event loop waiting for work, not work.
IDLE_LEAVES = (
    "_worker (concurrent/futures/thread.py",
    "run (asyncio/runners.py",
    "run_until_complete (asyncio/base_events.py",
    "run_forever (asyncio/base_events.py",
    "_run_once (asyncio/base_events.py",
    "select (selectors.py",
    "wait (threading.py",
)
OWN_CODE = ("storage_element/", "ingester/", "query/", "artstore/", "admin/")


def summarise_stacks(path: Path, top: int) -> dict[str, Any]:
    """Shares of the busy samples (idle leaves apart) by function (line numbers dropped):
    as the innermost frame (self) and anywhere on the stack (inclusive, own code only)."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = idle = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return {"busy_samples": 0}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        if frames[-1].startswith(IDLE_LEAVES):
            idle += count
            continue
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for f in set(frames):
            if any(m in f for m in OWN_CODE):
                incl[f] = incl.get(f, 0) + count

    def share(d: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * n / max(1, total), 1)) for name, n in ranked]

    return {
        "busy_samples": total,
        "idle_samples": idle,
        "self_pct": share(own),
        "inclusive_pct": share(incl),
    }
