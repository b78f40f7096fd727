"""The ingester's parts, wired once at start and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
        """Authorization of the ingester's own account: copies written for a user (they
        carry a chosen id and the uploader's history) and clean-up steps the caller may
        not be allowed to do (deleting a temporary copy after finalize)."""
        return {"Authorization": f"Bearer {await self.token.get(self.admin_http)}"}


def caller_headers(principal: Principal) -> dict[str, str]:
    """The caller's own token, for what the caller does as themselves on an SE (reading,
    upload sessions): the SE enforces the same scopes (DESIGN §4). Copies under an id
    the ingester chose go with the ingester's token instead (see history_params)."""
    return {"Authorization": f"Bearer {principal.token}"}


def history_params(
    uploaded_by: str,
    uploaded_at: datetime | str,
    finalized_by: str | None = None,
    finalized_at: datetime | str | None = None,
) -> list[tuple[str, str]]:
    """The query fields that make an SE record the original uploader (and finalizer) on
    a copy the ingester writes with its own service account; an SE honours them from a
    service account only (storage_element/files/access.py)."""

    def text(at: datetime | str) -> str:
        return at.isoformat() if isinstance(at, datetime) else at

    out = [("uploaded_by", uploaded_by), ("uploaded_at", text(uploaded_at))]
    if finalized_by is not None and finalized_at is not None:
        out += [("finalized_by", finalized_by), ("finalized_at", text(finalized_at))]
    return out


async def get_ingester(request: Request) -> Ingester:
    # async: a plain function dependency would be run in a worker thread on every request.
    ingester: Ingester = request.app.state.ingester
    return ingester


IngesterDep = Annotated[Ingester, Depends(get_ingester)]
