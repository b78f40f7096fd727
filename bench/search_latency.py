"""Search latency benchmark: p50/p95 of a mix of searches on a 1M-file catalog.

Creates a scratch database on the server of ``--database-url`` (default: this
machine's PostgreSQL), migrates it to head, loads ``--files`` generated files with
``INSERT ... SELECT generate_series`` (tests/support/catalog_rows.py: every tenth file
has a second copy, so 1M files are 1.1M rows) with the indexes dropped and built again
after (:func:`bulk_load`), VACUUM ANALYZEs, starts a real ``artstore serve query``
process trusting a stand-in token issuer, and runs each kind of search ``--rounds``
times, one request at a time, through HTTP. Prints one table row per kind.

    .venv/bin/python bench/search_latency.py [--files 1000000] [--rounds 40] [--json out]

The query process and the scratch database are removed at the end, also on Ctrl-C,
SIGTERM, an error and when ``--timeout`` (default 1800 s) runs out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from artstore.cli.devdb import create_database, drop_database, with_database  # noqa: E402
from artstore.cli.migrate import upgrade  # noqa: E402
from tests.support import catalog_rows  # noqa: E402
from tests.support.issuer import TestIssuer  # noqa: E402
from tests.support.process import ServiceProcess, free_port  # noqa: E402

SE = "se-bench"


def mix(rng: random.Random, files: int) -> dict[str, Any]:
    """Kind -> a function giving one request body (random parameters each round)."""
    day = catalog_rows.EPOCH.timestamp()

    def at(i: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day + i * 30))

    return {
        "default (active, newest first)": lambda: {},
        "full text, 1 word": lambda: {"query": rng.choice(catalog_rows.TOPICS)},
        "full text, 2 words + uploader": lambda: {
            "query": " ".join(rng.sample(catalog_rows.TOPICS, 2)),
            "uploaded_by": f"user{rng.randrange(50)}",
        },
        "filename partial": lambda: {"filename": f"ice_{rng.randrange(10, 9999)}"},
        "filename exact": lambda: {
            "filename": catalog_rows.row(SE, rng.randrange(files)).original_filename,
            "match": "exact",
        },
        "extension + uploader": lambda: {
            "file_extension": rng.choice(catalog_rows.EXTS),
            "uploaded_by": f"user{rng.randrange(50)}",
        },
        "tags (2, all match)": lambda: {"tags": [f"t{rng.randrange(10)}", f"g{rng.randrange(7)}"]},
        "metadata pair": lambda: {"metadata": {"project": f"p{rng.randrange(100)}"}},
        "size + date range, by size": lambda: (
            lambda s, d: {
                "min_size": s,
                "max_size": s + 50_000,
                "uploaded_after": at(d),
                "uploaded_before": at(d + files // 10),
                "sort_by": "size",
            }
        )(rng.randrange(9_000_000), rng.randrange(files)),
        "deep page (offset 5000)": lambda: {"offset": 5000, "limit": 100},
    }


async def drop_secondary_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop catalog.files' indexes other than its constraints' (a bulk build after a
    load is much faster than 1M insertions into GIN and trigram indexes); returns the
    statements that make them again."""
    defs = await conn.fetch(
        "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS sql "
        "FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid "
        "WHERE i.indrelid = 'catalog.files'::regclass AND c.oid IS NULL"
    )
    for d in defs:
        await conn.execute(f"DROP INDEX {d['name']}")
    return [str(d["sql"]) for d in defs]


async def bulk_load(dsn: str, files: int, say: Any = print) -> None:
    """Generated files into ``catalog.files`` of ``dsn`` (migrated to head), fast: the
    table's secondary indexes are dropped, the rows inserted (``INSERT ... SELECT
    generate_series``: no client round trips, like COPY), then every index is built
    again in one pass each (a bulk build is several times faster than 1M insertions into
    GIN and trigram indexes), and the table is VACUUM ANALYZEd. Constraint indexes (the
    primary key) stay."""
    conn = await asyncpg.connect(dsn)
    try:
        defs = await drop_secondary_indexes(conn)
        step = 200_000
        for start in range(0, files, step):
            await conn.execute(catalog_rows.insert_sql(SE, min(step, files - start), start))
            say(f"  loaded {min(start + step, files):,} files")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for sql in defs:
            await conn.execute(sql)
        say(f"  rebuilt {len(defs)} indexes")
        await conn.execute("VACUUM ANALYZE catalog.files")
    finally:
        await conn.close()


async def load(url: str, files: int) -> float:
    started = time.perf_counter()
    await asyncio.to_thread(upgrade, url, "head")
    await bulk_load(url.replace("+asyncpg", ""), files, lambda m: print(m, flush=True))
    return time.perf_counter() - started


async def loaded(url: str) -> bool:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        exists = await conn.fetchval("SELECT to_regclass('catalog.files') IS NOT NULL")
        return bool(exists) and bool(
            await conn.fetchval("SELECT EXISTS (SELECT FROM catalog.files)")
        )
    finally:
        await conn.close()


def run(qm_url: str, token: str, kinds: dict[str, Any], rounds: int) -> list[dict[str, Any]]:
    out = []
    with httpx.Client(base_url=qm_url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as c:  # fmt: skip
        for body in (kinds["default (active, newest first)"](),) * 5:  # warm-up
            c.post("/api/v1/search", json=body).raise_for_status()
        for name, make in kinds.items():
            times, totals = [], []
            for _ in range(rounds):
                body = make()
                t0 = time.perf_counter()
                r = c.post("/api/v1/search", json=body)
                times.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                totals.append(r.json()["total"])
            times.sort()
            out.append({
                "kind": name,
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                "max_ms": round(times[-1], 1),
                "median_total": int(statistics.median(totals)),
            })  # fmt: skip
    return out


def _out_of_time(*_: Any) -> None:
    raise TimeoutError("benchmark ran out of time")


def _terminated(*_: Any) -> None:
    raise SystemExit(143)


def main() -> int:
    p = argparse.ArgumentParser(description="search latency at scale")
    p.add_argument("--files", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=int, default=1800)
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--keep-database",
        metavar="NAME",
        help="load into this database once and keep it (a later run with the same name "
        "skips the load; migrations still run): for trying indexes and query shapes",
    )
    p.add_argument(
        "--as-is",
        action="store_true",
        help="with --keep-database: reuse it without migrating it (to time older code on "
        "the schema it had, e.g. after an alembic downgrade)",
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get(
            "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = p.parse_args()
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.signal(signal.SIGTERM, _terminated)
    signal.alarm(args.timeout)
    name = args.keep_database or f"artstore_bench_search_{uuid.uuid4().hex[:6]}"
    create_database(args.database_url, name, drop_first=not args.keep_database)
    url = with_database(args.database_url, name)
    issuer = TestIssuer()
    qm: ServiceProcess | None = None
    scratch = Path(tempfile.mkdtemp(prefix="qm-bench-"))
    try:
        if args.keep_database and asyncio.run(loaded(url)):
            print(f"reusing {name} (loaded before; --files must match)", flush=True)
            if not args.as_is:
                asyncio.run(asyncio.to_thread(upgrade, url, "head"))
            load_s = 0.0
        else:
            print(f"loading {args.files:,} files into {name} ...", flush=True)
            load_s = asyncio.run(load(url, args.files))
        port = free_port()
        env = {
            "DATABASE_URL": url,
            "JWKS_URL": issuer.jwks_url,
            "JWT_ISSUER": "artstore-test",
            "JWT_AUDIENCE": "artstore",
            "ADMIN_URL": "http://127.0.0.1:9",
            "QM_DATA_DIR": str(scratch),
            "LOG_LEVEL": "WARNING",
            "QM_SEARCH_TIMEOUT": "120",
        }
        log = scratch / "query.log"
        qm = ServiceProcess("query", env, port, log).start()
        rows = run(qm.url, issuer.token(), mix(random.Random(args.seed), args.files), args.rounds)
        print(f"\n{args.files:,} files ({load_s:.0f} s to load and index); "
              f"{args.rounds} requests per kind, one at a time, over HTTP\n")  # fmt: skip
        print("| search | p50 ms | p95 ms | max ms | median total |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['kind']} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | "
                  f"{r['median_total']:,} |")  # fmt: skip
        every = sorted(x for r in rows for x in (r["p50_ms"],))
        print(f"\nmedian of the per-kind p50s: {statistics.median(every)} ms")
        if args.json:
            args.json.write_text(json.dumps({"files": args.files, "rows": rows}, indent=2))
        return 0
    finally:
        signal.alarm(0)
        if qm is not None:
            qm.stop()
        issuer.close()
        shutil.rmtree(scratch, ignore_errors=True)
        if not args.keep_database:
            drop_database(args.database_url, name)


if __name__ == "__main__":
    raise SystemExit(main())
