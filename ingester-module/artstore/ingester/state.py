"""The ingester's parts, wired once at start and shared by every request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

import httpx
from fastapi import Depends, Request

from artstore.common.auth import Principal
from artstore.common.lean_http import UpstreamClient
from artstore.common.registry import ServiceToken, StorageElementRef, StorageRegistry
from artstore.common.se_client import StorageElementClient
from artstore.common.se_tokens import SeTokens
from artstore.ingester.metrics import IngestStats
from artstore.ingester.placement.capacity import Capacity
from artstore.ingester.settings import IGSettings


@dataclass
class IngesterState:
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

    # Tokens bound to one SE (token exchange at the admin, architecture §10): nothing the
    # ingester sends to an SE is accepted by the admin or by another SE.
    se_tokens: SeTokens
    # Every call to an SE goes through this (bodies over ``se_client`` on http:// SEs).
    se: StorageElementClient = field(init=False)

    def __post_init__(self) -> None:
        self.se = StorageElementClient(self.http, self.se_client)

    async def service_headers(self, se: StorageElementRef) -> dict[str, str]:
        """Authorization of the ingester's own account, bound to ``se``: copies written
        for a user (they carry a chosen id and the uploader's history) and clean-up steps
        the caller may not be allowed to do (deleting a temporary copy after finalize)."""
        token = await self.se_tokens.for_service(self.admin_http, se.storage_id)
        return {"Authorization": f"Bearer {token}"}

    def acting_for(self, principal: Principal) -> SeAuth:
        """Authorization for what the caller does as themselves on an SE (reading, upload
        sessions): the caller's token exchanged for one bound to that SE, so the SE
        enforces the caller's scopes (architecture §10); never the caller's own token."""

        async def headers(se: StorageElementRef) -> dict[str, str]:
            token = await self.se_tokens.for_caller(self.admin_http, principal.token, se.storage_id)
            return {"Authorization": f"Bearer {token}"}

        return headers


# The Authorization header to send to one SE.
SeAuth = Callable[[StorageElementRef], Awaitable[dict[str, str]]]


async def get_ingester(request: Request) -> IngesterState:
    # async: a plain function dependency would be run in a worker thread on every request.
    ingester: IngesterState = request.app.state.ingester
    return ingester


IngesterDep = Annotated[IngesterState, Depends(get_ingester)]
