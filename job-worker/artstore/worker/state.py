"""The worker's parts, wired once at start and shared by every job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import procrastinate
from sqlalchemy.ext.asyncio import AsyncEngine

from artstore.common.registry import ServiceToken, StorageRegistry
from artstore.common.se_client import StorageElementClient
from artstore.common.se_tokens import SeTokens
from artstore.worker.context import JobContext
from artstore.worker.metrics import WorkerMetrics
from artstore.worker.settings import WorkerSettings


@dataclass
class WorkerState:
    settings: WorkerSettings
    engine: AsyncEngine
    queue: procrastinate.App
    registry: StorageRegistry
    token: ServiceToken
    se_tokens: SeTokens
    # Calls to SEs (a maintenance call answers when the SE has done the work).
    se_http: httpx.AsyncClient
    # Calls to the admin (token exchange).
    admin_http: httpx.AsyncClient
    metrics: WorkerMetrics
    se: StorageElementClient = field(init=False)
    # The procrastinate worker, running in the app's lifespan.
    runner: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.se = StorageElementClient(self.se_http)

    def context(self, run_id: int, abort_check: Callable[[], bool]) -> JobContext:
        return JobContext(
            settings=self.settings,
            engine=self.engine,
            se_client=self.se,
            registry=self.registry,
            run_id=run_id,
            queue=self.queue,
            se_tokens=self.se_tokens,
            admin_http=self.admin_http,
            abort_check=abort_check,
            metrics_registry=self.metrics.registry,
        )
