"""The job queue: procrastinate on the shared PostgreSQL (docs/jobs.md says why).

Its tables live in the ``procrastinate`` schema (migration 0008), so every connection
of its pool uses that schema as its search_path. The URL is the one every service
already has (``DATABASE_URL``, SQLAlchemy style); psycopg takes the plain libpq form."""

from __future__ import annotations

import procrastinate

from artstore.contracts.jobs import QUEUE_SCHEMA

# The procrastinate release whose schema migration 0008 applies (migrations/sql/); a
# test compares it with the installed one, so an upgrade cannot skip its migration.
PROCRASTINATE_VERSION = "3.10.0"


def libpq_url(database_url: str) -> str:
    """``postgresql+asyncpg://…`` (or ``postgres://…``) → ``postgresql://…``."""
    scheme, sep, rest = database_url.partition("://")
    if not sep:
        return database_url
    if scheme.startswith("postgres"):
        scheme = "postgresql"
    return f"{scheme}://{rest}"


def make_queue(database_url: str, *, pool_size: int = 4) -> procrastinate.App:
    """A procrastinate App on ``database_url``; open it with ``await app.open_async()``
    (and close it with ``await app.close_async()``). ``pool_size``: most connections."""
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url),
        kwargs={"options": f"-c search_path={QUEUE_SCHEMA}"},
        min_size=1,
        max_size=max(pool_size, 1),
    )
    return procrastinate.App(connector=connector)
