"""The ingester's parts, wired once at start and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request

from artstore.common.auth import Principal
from artstore.common.lean_http import UpstreamClient
from artstore.common.registry import ServiceToken, StorageRegistry
from artstore.ingester.metrics import IngestStats
from artstore.ingester.placement.capacity import Capacity
from artstore.ingester.settings import IGSettings


@dataclass
class Ingester:
    settings: IGSettings
    registry: StorageRegistry
    token: ServiceToken
    # Calls to storage elements: a long read timeout because an SE answers an upload
    # only after it has fsynced the whole file.
    http: httpx.AsyncClient
    # Calls to the admin (service token).
    admin_http: httpx.AsyncClient
    stats: IngestStats
    # Room and mode of each writable SE, read in the background (placement).
    capacity: Capacity
    # The upload request to SEs (POST /api/v1/files), on lean keep-alive connections.
    se_client: UpstreamClient

    async def service_headers(self) -> dict[str, str]:
        """Authorization of the ingester's own account, for clean-up steps the caller may
        not be allowed to do (deleting a temporary copy after finalize)."""
        return {"Authorization": f"Bearer {await self.token.get(self.admin_http)}"}


def caller_headers(principal: Principal) -> dict[str, str]:
    """The caller's own token goes to the SE, so it records the real ``uploaded_by``
    and enforces the same scopes (DESIGN §4)."""
    return {"Authorization": f"Bearer {principal.token}"}


async def get_ingester(request: Request) -> Ingester:
    # async: a plain function dependency would be run in a worker thread on every request.
    ingester: Ingester = request.app.state.ingester
    return ingester


IngesterDep = Annotated[Ingester, Depends(get_ingester)]
