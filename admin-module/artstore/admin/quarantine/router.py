"""``/api/v1/quarantine``: every SE's quarantined copies (admin:read), restore and purge
(admin:write, audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from artstore.admin.quarantine import service
from artstore.admin.quarantine.schemas import Purged, PurgeRequest, QuarantineListing
from artstore.admin.state import DbSession, State
from artstore.common.auth import Principal, RequireScope
from artstore.common.pagination import Pagination

router = APIRouter(prefix="/api/v1/quarantine", tags=["quarantine"])

Reader = Annotated[Principal, Depends(RequireScope("admin:read"))]
Writer = Annotated[Principal, Depends(RequireScope("admin:write"))]


@router.get("", response_model=QuarantineListing)
async def list_quarantine(
    session: DbSession,
    state: State,
    principal: Reader,
    page: Pagination,
    storage_element_id: str | None = None,
) -> QuarantineListing:
    return await service.listing(session, state, principal, page, storage_element_id)


@router.post("/{storage_id}/{item}/restore", status_code=202)
async def restore(
    storage_id: str, item: str, session: DbSession, state: State, principal: Writer
) -> JSONResponse:
    accepted = await service.restore(session, state, principal, storage_id, item)
    return JSONResponse(accepted.model_dump(), status_code=202)


@router.post("/{storage_id}/{item}/purge", response_model=Purged)
async def purge(
    storage_id: str,
    item: str,
    session: DbSession,
    state: State,
    principal: Writer,
    body: PurgeRequest | None = None,
) -> Purged:
    confirm = body.confirm if body is not None else None
    return await service.purge(session, state, principal, storage_id, item, confirm)
