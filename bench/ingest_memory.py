"""Ingester memory benchmark: the ingester's RSS while files stream through it to an SE.

Starts a stand-in token issuer, a stand-in admin (token endpoint and SE registry only,
served from a thread: no database needed), one storage element and one ingester, each
SE and the ingester a real ``artstore serve`` process. Then, one request at a time, it
uploads files of each ``--sizes`` through the ingester, generated on the fly in 1 MiB
chunks (no side holds a whole file):

* ``PUT /api/v1/files/upload`` with the raw body (``Content-Length`` known);
* ``POST /api/v1/files/upload`` as multipart/form-data, the envelope streamed too.

Each answer's SHA-256 must equal the one the client computed while sending. A thread
samples the ingester's RSS every 50 ms; per request the table gives the RSS before it
(baseline), the highest sample during it (peak) and the difference.

Run from the repository root::

    .venv/bin/python bench/ingest_memory.py [--sizes 1M,64M,256M,1G] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.se_memory import (  # noqa: E402
    RssSampler,
    human,
    machine_info,
    mib,
    multipart_body,
    multipart_envelope,
    parse_sizes,
    payload,
)
from tests.support.issuer import TestIssuer  # noqa: E402
from tests.support.process import ServiceProcess, free_port  # noqa: E402


class FakeAdmin:
    """Just enough of the admin for an ingester: a service token and a registry."""

    def __init__(self, se_url: str, se_id: str) -> None:
        item = {
            "storage_id": se_id, "name": se_id, "url": se_url, "mode": "edit",
            "status": "online", "backend": "local",
            "capacity": {"total_bytes": 1 << 50, "used_bytes": 0,
                         "available_bytes": 1 << 50, "file_count": 0},
        }  # fmt: skip
        body = {"items": [item], "total": 1, "limit": 1000, "offset": 0, "has_more": False}

        class Handler(BaseHTTPRequestHandler):
            def _json(self, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._json({"access_token": "bench", "token_type": "Bearer", "expires_in": 3600})

            def do_GET(self) -> None:
                self._json(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class Result:
    operation: str
    size_bytes: int
    seconds: float
    mb_per_s: float
    ingester_baseline_rss_mib: float
    ingester_peak_rss_mib: float
    ingester_peak_minus_baseline_mib: float


def run(sizes: list[int], work: Path) -> tuple[list[Result], dict[str, Any]]:
    issuer = TestIssuer()
    se_port, ig_port = free_port(), free_port()
    se_id = f"se-bench-{uuid.uuid4().hex[:6]}"
    common = {"JWKS_URL": issuer.jwks_url, "JWT_ISSUER": "artstore-test",
              "JWT_AUDIENCE": "artstore", "DATABASE_URL": "", "LOG_LEVEL": "WARNING"}  # fmt: skip
    se = ServiceProcess(
        "storage-element",
        {**common, "SE_ID": se_id, "SE_MODE": "edit", "SE_DATA_DIR": str(work / "se"),
         "SE_RESERVE_BYTES": "0"},
        se_port,
        work / "se.log",
    )  # fmt: skip
    admin = FakeAdmin(f"http://127.0.0.1:{se_port}", se_id)
    ig = ServiceProcess(
        "ingester",
        {**common, "ADMIN_URL": admin.url, "IG_CLIENT_ID": "bench", "IG_CLIENT_SECRET": "x"},
        ig_port,
        work / "ingester.log",
    )
    results: list[Result] = []
    try:
        se.start(wait=False)
        se.wait_ready(180)
        ig.start(wait=False)
        ig.wait_ready(180)
        assert ig.proc is not None
        sampler = RssSampler(ig.proc.pid).start()
        auth = {"Authorization": f"Bearer {issuer.token('files:read files:write', 'bench')}"}
        with httpx.Client(base_url=ig.url, headers=auth, timeout=600) as c:

            def measure(op: str, size: int, send: Any) -> None:
                hasher = hashlib.sha256()
                base = sampler.begin()
                started = time.monotonic()
                r = send(hasher)
                took = time.monotonic() - started
                peak, _ = sampler.end()
                if r.status_code != 201 or r.json()["checksum"] != "sha256:" + hasher.hexdigest():
                    raise SystemExit(f"{op} {human(size)} failed: {r.status_code} {r.text[:300]}")
                results.append(Result(op, size, round(took, 2), round(size / took / 1e6, 1),
                                      mib(base), mib(peak), mib(peak - base)))  # fmt: skip
                print(f"{op:18} {human(size):>8} {took:7.1f}s base {mib(base):6.1f} MiB "
                      f"peak {mib(peak):6.1f} MiB (+{mib(peak - base)})", flush=True)  # fmt: skip

            def raw(h: Any, s: int, seed: int) -> httpx.Response:
                return c.put(
                    "/api/v1/files/upload",
                    params={"filename": f"raw-{s}.bin"},
                    content=payload(s, seed, h.update),
                    headers={"Content-Length": str(s)},
                )

            def form(h: Any, s: int, seed: int) -> httpx.Response:
                boundary = uuid.uuid4().hex
                head, tail = multipart_envelope(boundary, f"mp-{s}.bin")
                body: Iterator[bytes] = multipart_body(head, payload(s, seed, h.update), tail)
                return c.post(
                    "/api/v1/files/upload",
                    content=body,
                    headers={
                        "Content-Type": f"multipart/form-data; boundary={boundary}",
                        "Content-Length": str(len(head) + s + len(tail)),
                    },
                )

            measure("warm-up", 65536, lambda h: raw(h, 65536, 0))
            results.clear()
            for i, size in enumerate(sizes):
                measure("upload raw (PUT)", size, lambda h, s=size, i=i: raw(h, s, i + 1))
                measure("upload multipart", size, lambda h, s=size, i=i: form(h, s, 100 + i))
        sampler.stop()
    finally:
        ig.stop()
        se.stop()
        admin.close()
        issuer.close()
    return results, machine_info(work)


def table(results: list[Result]) -> str:
    lines = [
        "| operation | size | seconds | MB/s | baseline MiB | peak MiB | peak - baseline MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.operation} | {human(r.size_bytes)} | {r.seconds} | {r.mb_per_s} | "
            f"{r.ingester_baseline_rss_mib} | {r.ingester_peak_rss_mib} | "
            f"{r.ingester_peak_minus_baseline_mib} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1M,64M,256M,1G"))
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    work = ROOT / ".artstore" / "bench" / f"ingest-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    try:
        results, machine = run(args.sizes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({
            "at": datetime.now(UTC).isoformat(), "chunk_mib": 1, "machine": machine,
            "results": [asdict(r) for r in results]}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
