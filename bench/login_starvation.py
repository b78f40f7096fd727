"""Login starvation: a service account's client_credentials latency while 60 anonymous
clients keep guessing passwords (issue 13).

Starts a real admin (``artstore serve admin``) on a scratch database, creates a service
account and measures its token request (p50/p99 over ``--grants`` requests, one at a
time) in three phases: quiet; 60 concurrent guessers all from one address (127.0.0.2);
60 concurrent guessers each from its own address (127.0.1.1-60, the botnet case the
per-address budget does not stop). Guessers loop until the phase ends; their answers
(400 invalid_grant / 429 slow_down) are counted. A "cold" grant (a new account's first,
which pays Argon2 on the client lane) is measured under attack too.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/login_starvation.py [--grants 40] [--attackers 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.admin import AdminUnderTest  # noqa: E402
from tests.support.database import TestDatabase  # noqa: E402

TOKEN = "/api/v1/auth/token"  # noqa: S105 - a path


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def grant(url: str, sa: dict[str, Any]) -> float:
    start = time.perf_counter()
    r = httpx.post(
        url + TOKEN,
        data={"grant_type": "client_credentials"},
        auth=(sa["client_id"], sa["client_secret"]),
        timeout=60,
    )
    if r.status_code != 200:
        raise SystemExit(f"service account grant failed: {r.status_code} {r.text}")
    return time.perf_counter() - start


def guessers(
    url: str, addresses: list[str], stop: threading.Event, seen: Counter[int]
) -> list[threading.Thread]:
    lock = threading.Lock()

    def guess(address: str) -> None:
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(base_url=url, transport=transport, timeout=60) as c:
            while not stop.is_set():
                name = f"victim-{uuid.uuid4().hex[:6]}" if address.endswith("9") else "admin"
                r = c.post(TOKEN, data={"grant_type": "password", "username": name,
                                        "password": uuid.uuid4().hex})  # fmt: skip
                with lock:
                    seen[r.status_code] += 1

    threads = [threading.Thread(target=guess, args=(a,), daemon=True) for a in addresses]
    for t in threads:
        t.start()
    return threads


def phase(
    admin: AdminUnderTest,
    sa: dict[str, Any],
    cold_sa: dict[str, Any],
    addresses: list[str],
    grants: int,
) -> dict[str, Any]:
    stop = threading.Event()
    seen: Counter[int] = Counter()
    threads = guessers(admin.url, addresses, stop, seen) if addresses else []
    if threads:
        time.sleep(2.0)  # let the guessers fill every queue first
    times = [grant(admin.url, sa) for _ in range(grants)]
    cold = grant(admin.url, cold_sa) if threads else None
    stop.set()
    for t in threads:
        t.join()
    return {"times": times, "seen": dict(seen), "cold": cold}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grants", type=int, default=40)
    parser.add_argument("--attackers", type=int, default=60)
    args = parser.parse_args()
    db = TestDatabase(f"bench_login_{uuid.uuid4().hex[:6]}")
    admin = AdminUnderTest(Path(tempfile.mkdtemp(prefix="login-bench-")), db)
    try:
        admin.start()
        sa = admin.create_sa(["files:read"])
        grant(admin.url, sa)  # its first grant pays Argon2 once; the rest are warm
        n = args.attackers
        phases = {
            "quiet": [],
            f"{n} guessers, one address": ["127.0.0.2"] * n,
            f"{n} guessers, {n} addresses": [f"127.0.1.{i + 1}" for i in range(n)],
        }
        print(
            f"{'phase':<32} {'p50 s':>7} {'p99 s':>7} {'max s':>7} {'cold s':>7}  guesses answered"
        )
        for name, addresses in phases.items():
            # Made before the guessing starts: the admin's own sign-in would be throttled.
            cold_sa = admin.create_sa(["files:read"])
            out = phase(admin, sa, cold_sa, addresses, args.grants)
            t = out["times"]
            cold = f"{out['cold']:.3f}" if out["cold"] is not None else "-"
            seen = ", ".join(f"{k}: {v}" for k, v in sorted(out["seen"].items())) or "-"
            print(f"{name:<32} {percentile(t, 50):7.3f} {percentile(t, 99):7.3f} "
                  f"{max(t):7.3f} {cold:>7}  {seen}")  # fmt: skip
    finally:
        admin.process.stop()
        db.drop()


if __name__ == "__main__":
    main()
