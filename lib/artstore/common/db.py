"""Async SQLAlchemy engine and session helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the asyncpg driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    return url


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    timeout: float = 5.0,
    command_timeout: float | None = 30.0,
    pre_ping: bool = True,
) -> AsyncEngine:
    """``command_timeout`` bounds every statement client-side; None = unbounded (for
    migrations, whose index builds on a large catalog take minutes). ``pre_ping`` tests
    each connection taken from the pool (a round trip) so a restarted server costs no
    failed request; callers that retry anyway can save it.

    ``hide_parameters``: an error's text never carries the statement's values (another
    user's row, a password hash); logs and answers name the error class only (redact.py)."""
    return create_async_engine(
        normalize_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args={"timeout": timeout, "command_timeout": command_timeout},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def read_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for ONE read statement, in autocommit: no ``BEGIN`` before it
    and no ``ROLLBACK`` when it goes back to the pool. ``engine.connect()`` costs those
    two extra round trips per read (issue 19: two thirds of an SE metadata GET's
    database time). A single statement sees one snapshot either way; several
    statements that must agree belong in ``engine.begin()``. The asyncpg driver keeps
    the isolation level on the client, so setting it and its reset cost nothing."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn
