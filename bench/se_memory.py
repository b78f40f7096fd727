"""Storage element memory benchmark: the SE's RSS while files of growing size stream through.

Starts one storage element (a real ``artstore serve storage-element`` process) on a
fresh data directory and, one request at a time:

* uploads files of each ``--sizes`` as a streamed raw body, generated on the fly in
  1 MiB chunks of pseudo-random bytes (neither side ever holds a whole file);
* downloads each one back streamed and checks its SHA-256 against the one the upload
  returned (and the one the client computed while sending);
* uploads one ``--multipart-size`` file as multipart/form-data, the envelope streamed
  by a generator too.

A thread samples the SE's RSS every 50 ms. Per operation it reports the RSS just
before the request (baseline), the highest sample during it (peak) and the difference.

Run from the repository root::

    .venv/bin/python bench/se_memory.py [--sizes 1M,64M,256M,1G] [--json out.json]

The SE process and the data directory are removed at the end, also on Ctrl-C, on
SIGTERM, on an error and when ``--timeout`` runs out.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs installed

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.issuer import TestIssuer  # noqa: E402
from tests.support.process import ServiceProcess, free_port  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
CHUNK = 1 * MiB
SAMPLE_INTERVAL = 0.05
FSYNC_MODE = "fsync on: file + attr + directories"
_UNITS = {"": 1, "B": 1, "K": KiB, "M": MiB, "G": GiB}
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)(?:I?B)?\s*$", re.IGNORECASE)


class BenchError(Exception):
    """The benchmark could not run or a result failed its check."""


class OutOfTime(BenchError):
    """``--timeout`` ran out."""


# -- sizes ---------------------------------------------------------------------------------
def parse_size(text: str) -> int:
    """``1M`` -> 1048576; binary units (K, M, G), an optional ``B``/``iB`` suffix."""
    m = _SIZE.match(text)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64M, 1G)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def parse_sizes(text: str) -> list[int]:
    sizes = [parse_size(part) for part in text.split(",") if part.strip()]
    if not sizes or any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"need positive sizes: {text!r}")
    return sizes


def human(size: int) -> str:
    for unit, factor in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


# -- RSS sampling --------------------------------------------------------------------------
class RssSampler:
    """Samples the RSS of a process (and any children) every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        self._proc = psutil.Process(pid)
        self._interval = interval
        self._lock = threading.Lock()
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def read(self) -> int:
        total = int(self._proc.memory_info().rss)
        for child in self._proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += int(child.memory_info().rss)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                rss = self.read()
            except psutil.Error:
                return  # the process is gone
            with self._lock:
                self._peak = max(self._peak, rss)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def begin(self) -> int:
        """Start a measurement window; returns the RSS now (the window's baseline)."""
        rss = self.read()
        with self._lock:
            self._peak = rss
        return rss

    def end(self) -> tuple[int, int]:
        """(peak during the window, RSS now)."""
        rss = self.read()
        with self._lock:
            self._peak = max(self._peak, rss)
            return self._peak, rss


# -- request bodies ------------------------------------------------------------------------
def payload(size: int, seed: int, sink: Callable[[bytes], None]) -> Iterator[bytes]:
    """``size`` pseudo-random bytes in 1 MiB chunks, each passed to ``sink`` as it goes."""
    rng = random.Random(seed)
    remaining = size
    while remaining > 0:
        chunk = rng.randbytes(min(CHUNK, remaining))
        sink(chunk)
        remaining -= len(chunk)
        yield chunk


def multipart_envelope(boundary: str, filename: str) -> tuple[bytes, bytes]:
    """The bytes before and after the file's content in a one-part form."""
    b = boundary.encode()
    head = (
        b"--" + b + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + filename.encode() + b'"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    tail = b"\r\n--" + b + b"--\r\n"
    return head, tail


def multipart_body(head: bytes, chunks: Iterator[bytes], tail: bytes) -> Iterator[bytes]:
    yield head
    yield from chunks
    yield tail


# -- one run -------------------------------------------------------------------------------
@dataclass
class Result:
    operation: str
    size_bytes: int
    seconds: float
    mb_per_s: float
    se_baseline_rss_mib: float
    se_peak_rss_mib: float
    se_peak_minus_baseline_mib: float
    se_rss_after_mib: float
    client_peak_rss_mib: float
    sha256: str


def mib(n: int) -> float:
    return round(n / MiB, 1)


class Bench:
    def __init__(self, se: ServiceProcess, issuer: TestIssuer, se_rss: RssSampler) -> None:
        self.se = se
        self.issuer = issuer
        self.se_rss = se_rss
        self.client_rss = RssSampler(os.getpid()).start()
        self.client = httpx.Client(
            base_url=se.url,
            timeout=httpx.Timeout(connect=10.0, read=300.0, write=300.0, pool=10.0),
        )
        self.results: list[Result] = []

    def close(self) -> None:
        self.client.close()
        self.client_rss.stop()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.token(ttl=3600)}"}

    def _measure(self, operation: str, size: int, run: Callable[[], str]) -> Result:
        time.sleep(0.3)  # let the previous request's buffers go before the baseline
        baseline = self.se_rss.begin()
        self.client_rss.begin()
        t0 = time.perf_counter()
        sha = run()
        seconds = time.perf_counter() - t0
        peak, after = self.se_rss.end()
        client_peak, _ = self.client_rss.end()
        result = Result(
            operation=operation,
            size_bytes=size,
            seconds=round(seconds, 3),
            mb_per_s=round(size / seconds / 1e6, 1),
            se_baseline_rss_mib=mib(baseline),
            se_peak_rss_mib=mib(peak),
            se_peak_minus_baseline_mib=mib(peak - baseline),
            se_rss_after_mib=mib(after),
            client_peak_rss_mib=mib(client_peak),
            sha256=sha,
        )
        self.results.append(result)
        print(
            f"  {operation:<17} {human(size):>8}  {seconds:8.2f} s  {result.mb_per_s:8.1f} MB/s"
            f"  SE RSS {result.se_baseline_rss_mib:.1f} -> peak {result.se_peak_rss_mib:.1f} MiB"
            f"  (+{result.se_peak_minus_baseline_mib:.1f})",
            flush=True,
        )
        return result

    def _post(self, content: Iterator[bytes], headers: dict[str, str], **params: str) -> Any:
        r = self.client.post(
            "/api/v1/files", content=content, params=params, headers={**self._auth(), **headers}
        )
        if r.status_code != 201:
            raise BenchError(f"upload answered {r.status_code}: {r.text[:500]}")
        return r.json()

    @staticmethod
    def _check_upload(meta: Any, size: int, sent_sha: str) -> str:
        checksum = str(meta["checksum"]).removeprefix("sha256:")
        if meta["size"] != size:
            raise BenchError(f"SE stored {meta['size']} bytes, {size} were sent")
        if checksum != sent_sha:
            raise BenchError(f"SE checksum {checksum} differs from the sent bytes' {sent_sha}")
        return checksum

    def upload_raw(self, size: int, seed: int) -> tuple[str, str]:
        """Returns (file_id, sha256)."""
        file_id = ""

        def run() -> str:
            nonlocal file_id
            sent = hashlib.sha256()
            meta = self._post(
                payload(size, seed, sent.update),
                {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                filename=f"bench-{size}.bin",
            )
            file_id = str(meta["file_id"])
            return self._check_upload(meta, size, sent.hexdigest())

        result = self._measure("upload raw", size, run)
        return file_id, result.sha256

    def upload_multipart(self, size: int, seed: int) -> str:
        def run() -> str:
            sent = hashlib.sha256()
            boundary = uuid.uuid4().hex
            head, tail = multipart_envelope(boundary, f"bench-{size}-multipart.bin")
            meta = self._post(
                multipart_body(head, payload(size, seed, sent.update), tail),
                {
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(len(head) + size + len(tail)),
                },
            )
            return self._check_upload(meta, size, sent.hexdigest())

        return self._measure("upload multipart", size, run).sha256

    def download(self, file_id: str, size: int, expected_sha: str) -> None:
        def run() -> str:
            got = hashlib.sha256()
            n = 0
            url = f"/api/v1/files/{file_id}/download"
            with self.client.stream("GET", url, headers=self._auth()) as r:
                if r.status_code != 200:
                    raise BenchError(f"download answered {r.status_code}: {r.read()[:500]!r}")
                for chunk in r.iter_bytes():
                    got.update(chunk)
                    n += len(chunk)
            sha = got.hexdigest()
            if n != size or sha != expected_sha:
                raise BenchError(
                    f"download of {file_id}: {n} bytes sha256 {sha}, "
                    f"expected {size} bytes sha256 {expected_sha}"
                )
            return sha

        self._measure("download", size, run)

    def warm_up(self) -> int:
        """One small upload and download (imports, JWKS fetch, first files); the settled RSS."""
        sent = hashlib.sha256()
        meta = self._post(
            payload(64 * KiB, 0, sent.update),
            {"Content-Type": "application/octet-stream", "Content-Length": str(64 * KiB)},
            filename="warm-up.bin",
        )
        sha = self._check_upload(meta, 64 * KiB, sent.hexdigest())
        with self.client.stream(
            "GET", f"/api/v1/files/{meta['file_id']}/download", headers=self._auth()
        ) as r:
            if r.status_code != 200 or hashlib.sha256(r.read()).hexdigest() != sha:
                raise BenchError("warm-up download failed")
        time.sleep(1.0)
        return self.se_rss.read()


# -- machine -------------------------------------------------------------------------------
def _run_text(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def filesystem_type(path: Path) -> str:
    lines = _run_text(["df", "-T", str(path)]).splitlines()
    if len(lines) >= 2 and len(lines[-1].split()) >= 2:
        return lines[-1].split()[1]
    return _run_text(["stat", "-f", "-c", "%T", str(path)]) or "unknown"


def machine_info(data_dir: Path) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": platform.machine(),
        "kernel": platform.release(),
        "memory_total_gib": round(psutil.virtual_memory().total / GiB, 1),
        "data_dir": str(data_dir),
        "data_dir_fs": filesystem_type(data_dir),
        "python": platform.python_version(),
        "fsync": FSYNC_MODE,
    }


# -- report --------------------------------------------------------------------------------
COLUMNS = (
    "operation",
    "file size",
    "seconds",
    "MB/s",
    "SE baseline RSS MiB",
    "SE peak RSS MiB",
    "peak - baseline MiB",
)


def table(results: list[Result]) -> str:
    rows = [
        [
            r.operation,
            human(r.size_bytes),
            f"{r.seconds:.2f}",
            f"{r.mb_per_s:.1f}",
            f"{r.se_baseline_rss_mib:.1f}",
            f"{r.se_peak_rss_mib:.1f}",
            f"{r.se_peak_minus_baseline_mib:.1f}",
        ]
        for r in results
    ]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        padded = [
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|" + "|".join("-" * (w + 1) + (":" if i >= 2 else "-") for i, w in enumerate(widths)) + "|"
    )
    return "\n".join([line(COLUMNS), rule, *(line(row) for row in rows)])


# -- main ----------------------------------------------------------------------------------
def _raise_out_of_time(signum: int, frame: FrameType | None) -> None:
    raise OutOfTime("the benchmark ran out of time (--timeout)")


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("1M,64M,256M,1G"),
        help="comma-separated raw upload/download sizes, binary units (default 1M,64M,256M,1G)",
    )
    p.add_argument(
        "--multipart-size",
        type=parse_size,
        default=GiB,
        help="size of the one multipart upload; 0 skips it (default 1G)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the SE keeps its data (a fresh subfolder, removed afterwards); "
        "default a temp dir under .artstore/bench",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument(
        "--timeout", type=int, default=3600, help="give up after this many seconds (default 3600)"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes: list[int] = args.sizes
    multipart_size: int = args.multipart_size
    parent: Path = args.data_dir or ROOT / ".artstore" / "bench"
    parent.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="se-memory-", dir=parent))

    signal.signal(signal.SIGALRM, _raise_out_of_time)
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.alarm(args.timeout)

    issuer: TestIssuer | None = None
    se: ServiceProcess | None = None
    se_rss: RssSampler | None = None
    bench: Bench | None = None
    ok = False
    try:
        need = sum(sizes) + multipart_size + GiB
        free = shutil.disk_usage(run_dir).free
        if free < need:
            raise BenchError(f"{run_dir} has {human(free)} free; this run needs {human(need)}")
        machine = machine_info(run_dir)
        print("machine:")
        for key, value in machine.items():
            print(f"  {key:<17} {value}")
        print(f"client concurrency 1; chunk {human(CHUNK)}; RSS sampled every {SAMPLE_INTERVAL} s")

        issuer = TestIssuer()
        se_id = f"se-bench-{uuid.uuid4().hex[:6]}"
        se = ServiceProcess(
            "storage-element",
            {
                "SE_ID": se_id,
                "SE_MODE": "rw",
                "SE_DATA_DIR": str(run_dir / se_id),
                "SE_RESERVE_BYTES": "0",
                "DATABASE_URL": "",
                "JWKS_URL": issuer.jwks_url,
                "JWT_ISSUER": "artstore-test",
                "JWT_AUDIENCE": "artstore",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "WARNING",
            },
            free_port(),
            run_dir / "se.log",
        )
        se.start(wait=False)
        se.wait_ready(timeout=60)
        assert se.proc is not None
        se_rss = RssSampler(se.proc.pid).start()
        bench = Bench(se, issuer, se_rss)
        after_start = se_rss.read()
        warm = bench.warm_up()
        print(
            f"SE pid {se.proc.pid}: RSS {mib(after_start)} MiB after start, "
            f"{mib(warm)} MiB after the warm-up upload/download"
        )

        for i, size in enumerate(sizes, start=1):
            file_id, sha = bench.upload_raw(size, seed=i)
            bench.download(file_id, size, sha)
        if multipart_size:
            bench.upload_multipart(multipart_size, seed=len(sizes) + 1)

        print()
        print(table(bench.results))
        print()
        client_peak = max(r.client_peak_rss_mib for r in bench.results)
        print(f"client peak RSS {client_peak} MiB; {FSYNC_MODE}; MB/s = 10^6 bytes per second")
        if args.json:
            report = {
                "benchmark": "se_memory",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine,
                "client_concurrency": 1,
                "chunk_bytes": CHUNK,
                "sample_interval_s": SAMPLE_INTERVAL,
                "se_rss_after_start_mib": mib(after_start),
                "se_rss_after_warm_up_mib": mib(warm),
                "results": [asdict(r) for r in bench.results],
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
            print(f"results written to {args.json}")
        ok = True
    except (BenchError, TimeoutError, RuntimeError, httpx.HTTPError) as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        if se is not None:
            print(f"--- SE log (tail) ---\n{se.log()}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup is not to be interrupted
        if bench is not None:
            bench.close()
        if se is not None:
            se.stop(timeout=15)
        if se_rss is not None:
            se_rss.stop()
        if issuer is not None:
            issuer.close()
        shutil.rmtree(run_dir, ignore_errors=True)
        if args.data_dir is None:
            with contextlib.suppress(OSError):
                parent.rmdir()  # only if empty: another run may be using it
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
