"""rebuild-index speed (issue 7): the offline command and the rebuild itself, in files/s.

Creates a scratch database on the server of ``--database-url`` (default: this machine's
PostgreSQL), migrates it to 0002, loads ``--catalog-files`` generated files of another
SE (tests/support/catalog_rows.py; 1M files are 1.1M rows), migrates to head (the
search indexes are built over them) and ANALYZEs, so the rebuild's inserts hit big
indexes as in ``bench/run``. Writes ``--files`` blobs and valid attr files with the
SE's own model (``bench/run.py``'s ``write_attr_files``), then per round times:

- ``first``: ``artstore se rebuild-index`` (offline) with none of the SE's rows in the
  catalog, end to end (a fresh interpreter, imports, connect, walk, decode, write);
- ``again``: the same command while all its rows are there and right (none rewritten);
- ``stale``: the same after every row's description was changed (all rewritten);
- ``start-up``: the command over an empty ``files/`` (its fixed cost);
- ``in-process``: ``rebuild()`` called directly (walk, decode, write; no start-up).

Each round rebuilds a new SE id (none of its rows ever in the catalog, as in
``bench/run``); the rows written are deleted at the end.

Each command also prints its own rebuild time, shown as "own s". CPU seconds are less
noisy than wall time on a shared machine: the command's (``RUSAGE_CHILDREN``; with
``--py-spy`` the first row includes py-spy's), and for the in-process run its own and
its PostgreSQL backend's (``/proc``, so only with a local server). After every run the
SE's rows are checked against the attr files (count, sum of versions, no stale value).

    .venv/bin/python bench/rebuild_index.py [--files 20000] [--catalog-files 1000000]
        [--rounds 2] [--keep-db NAME] [--py-spy PATH]

``--keep-db NAME`` keeps (and on the next run reuses) the loaded database, which saves
the minute or two of loading; without it the scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from artstore.cli.devdb import create_database, drop_database, with_database  # noqa: E402
from artstore.cli.migrate import upgrade  # noqa: E402
from tests.support import catalog_rows  # noqa: E402

SE = "bench-rebuild"
OTHER_SE = "se-bench"
STALE = "UPDATE catalog.files SET description = 'stale' WHERE storage_element_id = $1"


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _scalar(url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn(url))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def prepare_database(admin_url: str, name: str, files: int, reuse: bool) -> str:
    url = with_database(admin_url, name)
    if reuse:
        create_database(admin_url, name)
        try:
            have = asyncio.run(_scalar(url, "SELECT count(*) FROM catalog.files"))
            if have >= files:
                print(f"reusing database {name} ({have:,} rows)", flush=True)
                return url
        except asyncpg.UndefinedTableError:
            pass
    create_database(admin_url, name, drop_first=True)
    upgrade(url, "0002_admin")
    t0 = time.perf_counter()

    async def load() -> None:
        conn = await asyncpg.connect(dsn(url))
        try:
            step = 100_000
            for start in range(0, files, step):
                await conn.execute(
                    catalog_rows.insert_sql(OTHER_SE, min(step, files - start), start)
                )
        finally:
            await conn.close()

    asyncio.run(load())
    upgrade(url, "head")
    asyncio.run(_scalar(url, "VACUUM ANALYZE catalog.files"))
    print(f"loaded {files:,} files of {OTHER_SE} in {time.perf_counter() - t0:.0f} s", flush=True)
    return url


def command(
    data_dir: Path, url: str, se: str, py_spy: str | None, profile: Path | None
) -> list[str]:
    prefix: list[str] = []
    if py_spy and profile:
        prefix = [py_spy, "record", "--format", "raw", "--rate", "250", "-o", str(profile), "--"]
    return [
        *prefix,
        sys.executable,
        "-m",
        "artstore.cli.main",
        "se",
        "rebuild-index",
        "--data-dir",
        str(data_dir),
        "--se-id",
        se,
        "--database-url",
        url,
    ]


class Run(NamedTuple):
    label: str
    wall: float
    own: float | None = None  # the rebuild as the command times it
    py_cpu: float | None = None  # the command's (or this process's) CPU seconds
    pg_cpu: float | None = None  # its PostgreSQL backend's CPU seconds (in-process only)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _backend_cpu(pid: int) -> float | None:
    """CPU seconds of a PostgreSQL backend on this machine (None when not local)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_command(
    label: str,
    data_dir: Path,
    url: str,
    se: str,
    py_spy: str | None = None,
    profile: Path | None = None,
) -> tuple[Run, str]:
    """The run (wall, own rebuild seconds if the command says, its CPU) and its output."""
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    done = subprocess.run(
        command(data_dir, url, se, py_spy, profile),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"rebuild-index failed: {done.stdout[-500:]} {done.stderr[-2000:]}")
    said = done.stdout.strip()
    own = re.search(r" in ([0-9.]+) s", said)
    cpu = _children_cpu() - cpu0
    return Run(label, seconds, float(own.group(1)) if own else None, cpu), said


def in_process(data_dir: Path, url: str, se: str) -> Run:
    from artstore.common.db import make_engine
    from artstore.storage_element.backends import make_backend
    from artstore.storage_element.catalog.repository import CatalogRepository
    from artstore.storage_element.layout import Layout
    from artstore.storage_element.maintenance.rebuild import rebuild
    from artstore.storage_element.settings import SESettings

    settings = SESettings(id=se, data_dir=data_dir)

    async def run() -> Run:
        from sqlalchemy import text

        engine = make_engine(url)
        try:
            backend = make_backend(settings, Layout(settings.data_dir, settings.wal_dir))
            repo = CatalogRepository(engine, se)
            # Connect first (start-up); the rebuild then takes this pooled connection.
            async with engine.connect() as conn:
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            pg0, py0 = _backend_cpu(pid), time.process_time()
            t0 = time.perf_counter()
            await rebuild(backend, repo)
            wall = time.perf_counter() - t0
            pg1, py1 = _backend_cpu(pid), time.process_time()
            pg = pg1 - pg0 if pg0 is not None and pg1 is not None else None
            return Run("in-process rebuild()", wall, None, py1 - py0, pg)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def check_rows(url: str, files: int, se: str) -> None:
    """The SE's rows are the attrs' (count, versions, no stale description left)."""

    async def run() -> tuple[int, int]:
        conn = await asyncpg.connect(dsn(url))
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, coalesce(sum(version), 0) AS v, "
                "count(*) FILTER (WHERE description = 'stale') AS stale "
                "FROM catalog.files WHERE storage_element_id = $1",
                se,
            )
            return int(row["n"]), int(row["v"]) + int(row["stale"])
        finally:
            await conn.close()

    n, v = asyncio.run(run())
    if n != files or v != files:
        raise SystemExit(f"catalog holds {n} rows (versions {v}) of {se}, expected {files}")


def delete_rows(url: str) -> None:
    """Every row a run of this benchmark wrote."""
    asyncio.run(
        _scalar(url, "DELETE FROM catalog.files WHERE storage_element_id LIKE $1", SE + "%")
    )


def table(rows: list[Run], files: int) -> str:
    lines = [
        "| run | wall s | files/s | own s | own files/s | CPU s (Python) | CPU s (PG) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.2f}"

    for r in rows:
        empty = r.label.startswith("start")  # no files: a rate means nothing
        rate = "" if empty else f"{files / r.wall:,.0f}"
        own_rate = f"{files / r.own:,.0f}" if r.own and not empty else ""
        lines.append(
            f"| {r.label} | {r.wall:.2f} | {rate} | {num(r.own)} | {own_rate} "
            f"| {num(r.py_cpu)} | {num(r.pg_cpu)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", type=int, default=20_000)
    p.add_argument("--catalog-files", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--keep-db", metavar="NAME", help="keep and reuse this database")
    p.add_argument("--py-spy", metavar="PATH", help="profile the first command (raw stacks)")
    args = p.parse_args(argv)

    from run import write_attr_files  # type: ignore[import-not-found]

    name = args.keep_db or f"artstore_rebuild_{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="artstore-rebuild-"))
    try:
        url = prepare_database(args.database_url, name, args.catalog_files, bool(args.keep_db))
        delete_rows(url)
        data, empty = work / "se", work / "empty"
        (empty / "files").mkdir(parents=True)
        t0 = time.perf_counter()
        write_attr_files(data, args.files)
        print(f"wrote {args.files:,} files in {time.perf_counter() - t0:.1f} s", flush=True)
        rows: list[Run] = []
        for r in range(args.rounds):
            se = f"{SE}-{r}"  # a new SE each round, as in bench/run
            profile = work / "profile.txt" if r == 0 and args.py_spy else None
            run, said = run_command("first (no rows of the SE)", data, url, se, args.py_spy,
                                    profile)  # fmt: skip
            check_rows(url, args.files, se)
            rows.append(run)
            run, said = run_command("again (rows already right)", data, url, se)
            check_rows(url, args.files, se)
            rows.append(run)
            asyncio.run(_scalar(url, STALE, se))
            run, said = run_command("stale (every row differs)", data, url, se)
            check_rows(url, args.files, se)
            rows.append(run)
            rows.append(run_command("start-up (empty files/)", empty, url, f"{SE}-empty")[0])
            rows.append(in_process(data, url, f"{se}-p"))
            check_rows(url, args.files, f"{se}-p")
        delete_rows(url)
        print(f"\n{args.files:,} attr files; catalog holds {args.catalog_files:,} other files")
        print(f"last output: {said}\n")
        print(table(rows, args.files))
        if args.py_spy:
            kept = Path(tempfile.gettempdir()) / "profile-rebuild.txt"
            shutil.copy(work / "profile.txt", kept)
            print(f"\npy-spy raw stacks of the first command: {kept}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep_db:
            drop_database(args.database_url, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
