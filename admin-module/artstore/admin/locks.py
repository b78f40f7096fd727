"""Cluster-wide locks in PostgreSQL, for work one admin replica must do alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

BOOTSTRAP = 727277


@asynccontextmanager
async def held(engine: AsyncEngine, key: int) -> AsyncIterator[None]:
    """A session-level advisory lock held on its own connection while the block runs."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        await conn.commit()
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            await conn.commit()


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
