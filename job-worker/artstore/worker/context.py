"""What a job's function gets: the worker's shared parts and its own run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import procrastinate
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from artstore.common.registry import StorageRegistry
from artstore.common.se_client import StorageElementClient
from artstore.common.se_tokens import SeTokens
from artstore.worker.settings import WorkerSettings


@dataclass
class JobContext:
    settings: WorkerSettings
    # The shared database (catalog, jobs.runs): SQL through the repositories only.
    engine: AsyncEngine
    # Every call to an SE goes through this (architecture §2).
    se_client: StorageElementClient
    # The admin's SE registry, refreshed in the background.
    registry: StorageRegistry
    # This run's row in jobs.runs.
    run_id: int
    # The queue, to defer follow-up jobs with artstore.jobs.defer.defer_job.
    queue: procrastinate.App
    se_tokens: SeTokens
    admin_http: httpx.AsyncClient
    # True once a cancel was asked for this run (POST /api/v1/jobs/{id}/cancel).
    abort_check: Callable[[], bool]
    # The worker's Prometheus registry (its /metrics): jobs add their own figures to it.
    metrics_registry: CollectorRegistry | None = None

    async def se_token(self, storage_id: str) -> str:
        """A token of the worker's own service account bound to one SE (token exchange,
        architecture §10)."""
        return await self.se_tokens.for_service(self.admin_http, storage_id)

    async def se_headers(self, storage_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.se_token(storage_id)}"}

    def should_abort(self) -> bool:
        """Check it between steps of a long job and stop (return or raise) when true;
        the run is then recorded cancelled."""
        return self.abort_check()
