"""The admin's parts, wired once at start, and the typed dependencies routes use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import httpx
import procrastinate
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from artstore.admin.events import Events
from artstore.admin.metrics import AdminMetrics
from artstore.admin.settings import AMSettings

if TYPE_CHECKING:
    from artstore.admin.auth.throttle import LoginThrottle
    from artstore.admin.keys.service import KeyStore
    from artstore.common.revocation import RevocationFeed


@dataclass
class AdminState:
    settings: AMSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keys: KeyStore
    http: httpx.AsyncClient  # calls to storage elements
    events: Events
    metrics: AdminMetrics
    # Sign-in budgets and lockouts (auth/throttle.py) and per-subject revocations
    # (auth/revocations.py): set in the lifespan, before the first request.
    throttle: LoginThrottle | None = None
    revocations: RevocationFeed | None = None
    # The job queue (cancel, retry: artstore.jobs): opened in the lifespan.
    jobs_queue: procrastinate.App | None = None


# async: FastAPI runs a plain ``def`` dependency on its thread pool (a hop per request).
async def get_state(request: Request) -> AdminState:
    state: AdminState = request.app.state.admin
    return state


State = Annotated[AdminState, Depends(get_state)]


async def get_session(state: State) -> AsyncIterator[AsyncSession]:
    # Services open their own transactions (``session.begin()``) so a commit always
    # happens before the answer is sent.
    async with state.sessions() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session)]
