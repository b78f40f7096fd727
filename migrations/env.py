"""Alembic environment: async engine, URL from DATABASE_URL or ``-x url=``."""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from artstore.common.db import make_engine
from artstore.contracts.tables import metadata

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url")
    url = url or os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit("set DATABASE_URL (or pass -x url=...) to run migrations")
    return str(url)


# Schemas whose tables are in our metadata; anything else in the database (Alembic's
# version table, procrastinate's schema: migration 0008) is not ours to compare.
SCHEMAS = frozenset({"catalog", "admin", "jobs"})


def _ours(obj: object, name: str | None, type_: str, reflected: bool, _: object) -> bool:
    """Leave Alembic's own version table (in public) and other schemas out of ``check``."""
    if type_ == "table":
        return getattr(obj, "schema", None) in SCHEMAS
    return True


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=config.attributes.get("target_metadata", metadata),
        version_table_schema="public",
        include_schemas=True,
        include_object=_ours,
        include_name=lambda name, type_, parents: type_ != "schema" or name in SCHEMAS,
    )
    with context.begin_transaction():
        # One migrator at a time, even when several services start together.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        context.run_migrations()


async def _main() -> None:
    # No statement timeout: building an index over a large catalog takes minutes.
    engine = make_engine(_url(), pool_size=1, command_timeout=None)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported")
asyncio.run(_main())
