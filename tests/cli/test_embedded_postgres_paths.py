"""The embedded PostgreSQL starts from a deep checkout (issue 17): a unix socket path must
fit 107 bytes, so with a data directory of 150+ characters the socket goes to a short
private folder (lib/artstore/cli/devdb.py), for ``artstore up`` and for the tests alike.

Each case runs in a child process: the embedded server reads its runtime folder when
imported, and stops when the process that started it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from artstore.cli.devdb import short_runtime_dir

ROOT = Path(__file__).resolve().parents[2]

# Starts the server the way `artstore up --data-dir DIR` does (prepare_database: the
# server, the database, the migrations), then reports where its socket is.
UP = """
import asyncio, json, sys
from pathlib import Path
import asyncpg
from rich.console import Console
from artstore.cli.up import prepare_database
url, label = prepare_database(Path(sys.argv[1]), "", Console(stderr=True))
async def ask():
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval("SELECT count(*) FROM alembic_version")
    finally:
        await conn.close()
import os
mode = os.stat(os.environ["XDG_RUNTIME_DIR"]).st_mode & 0o777
print(json.dumps({"url": url, "label": label, "answer": asyncio.run(ask()), "mode": mode}))
"""

# The test suite's own server (tests/support/database.py) with the checkout elsewhere.
TESTS = """
import asyncio, json, sys
from pathlib import Path
import asyncpg
from tests.support import database
database.ROOT = Path(sys.argv[1])
url = database.server_url()
async def ask():
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
print(json.dumps({"url": url, "answer": asyncio.run(ask())}))
"""


def _deep(base: Path, length: int) -> Path:
    """A folder under ``base`` whose path is at least ``length`` characters."""
    path = base
    while len(str(path)) < length:
        path = path / ("deep-checkout-" + "x" * 36)
    path.mkdir(parents=True)
    return path


def _run(script: str, arg: Path, xdg: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL", "XDG_RUNTIME_DIR")}
    if xdg is not None:
        env["XDG_RUNTIME_DIR"] = xdg
    done = subprocess.run(
        [sys.executable, "-c", script, str(arg)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _socket_dir(url: str) -> Path:
    """The ``host=`` of the URL: the folder of the server's unix socket."""
    from sqlalchemy.engine import make_url

    return Path(str(make_url(url).query["host"]))


@pytest.mark.process
@pytest.mark.parametrize("xdg", [None, "long"], ids=["no-runtime-dir", "long-runtime-dir"])
def test_artstore_up_starts_the_embedded_postgres_from_a_150_char_path(
    tmp_path: Path, xdg: str | None
) -> None:
    data_dir = _deep(tmp_path, 150)
    runtime = str(_deep(tmp_path / "run", 120)) if xdg else None
    assert len(str(data_dir / "postgres" / "data")) > 150
    out = _run(UP, data_dir, runtime)
    assert out["answer"] == 1  # migrated: one alembic head
    assert out["label"] == "PostgreSQL (embedded)"
    socket_dir = _socket_dir(str(out["url"]))
    assert socket_dir.is_relative_to(short_runtime_dir())
    assert len(str(socket_dir / ".s.PGSQL.5432")) <= 107
    # closed again once the server listens (as root it was opened for the start)
    assert out["mode"] == 0o700


@pytest.mark.process
def test_the_test_suites_embedded_postgres_starts_from_a_150_char_checkout(
    tmp_path: Path,
) -> None:
    checkout = _deep(tmp_path, 150)
    out = _run(TESTS, checkout, None)
    assert out["answer"] == 1
    assert (checkout / ".artstore" / "test-postgres" / "data" / "PG_VERSION").is_file()
    assert _socket_dir(str(out["url"])).is_relative_to(short_runtime_dir())


def test_the_short_runtime_folder_is_private_and_ours() -> None:
    path = short_runtime_dir()
    info = path.lstat()
    assert path.is_dir() and not path.is_symlink()
    assert info.st_uid == os.geteuid()
    assert len(str(path)) <= 40
    assert info.st_mode & 0o777 == 0o700
