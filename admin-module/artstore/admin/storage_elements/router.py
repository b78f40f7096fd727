"""``/api/v1/storage-elements`` (reads storage:read, the rest storage:write; registering
or moving an SE to another url admin:write)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from artstore.admin.audit.service import Actor
from artstore.admin.auth.exchange import bound_for
from artstore.admin.state import DbSession, State
from artstore.admin.storage_elements import service
from artstore.admin.storage_elements.schemas import (
    Discover,
    Mode,
    ModeRequest,
    Register,
    SEPatch,
    SEStatus,
    StorageElement,
)
from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import Forbidden
from artstore.common.pagination import Page, Pagination

router = APIRouter(prefix="/api/v1/storage-elements", tags=["storage elements"])

Reader = Annotated[Principal, Depends(RequireScope("storage:read"))]
Writer = Annotated[Principal, Depends(RequireScope("storage:write"))]
AdminWriter = Annotated[Principal, Depends(RequireScope("admin:write"))]


@router.post("/discover")
async def discover(body: Discover, state: State, _: Writer) -> dict[str, Any]:
    return await service.discover(state.settings, state.http, body.url)


@router.post("", status_code=201, response_model=StorageElement)
async def register(
    body: Register, session: DbSession, state: State, principal: AdminWriter
) -> StorageElement:
    """Needs admin:write: an SE receives tokens (bound to it) and the admin calls it."""
    row = await service.register(session, state.settings, state.http, Actor.of(principal), body)
    return StorageElement.of(row)


@router.get("", response_model=Page[StorageElement])
async def list_storage_elements(
    session: DbSession,
    _: Reader,
    page: Pagination,
    mode: Mode | None = None,
    status: SEStatus | None = None,
) -> Page[StorageElement]:
    rows, total = await service.page(session, mode, status, page.limit, page.offset)
    return Page.of([StorageElement.of(r) for r in rows], total, page)


@router.get("/{storage_id}", response_model=StorageElement)
async def get_storage_element(storage_id: str, session: DbSession, _: Reader) -> StorageElement:
    return StorageElement.of(await service.get(session, storage_id))


@router.patch("/{storage_id}", response_model=StorageElement)
async def patch_storage_element(
    storage_id: str, body: SEPatch, session: DbSession, state: State, principal: Writer
) -> StorageElement:
    if body.url is not None and not principal.has("admin:write"):
        raise Forbidden(
            "changing a storage element's url needs admin:write",
            details={"required_any_of": ["admin:write"]},
        )
    row = await service.patch(
        session, state.settings, state.http, Actor.of(principal), storage_id, body
    )
    return StorageElement.of(row)


@router.delete("/{storage_id}", status_code=204)
async def delete_storage_element(
    storage_id: str, session: DbSession, principal: Writer
) -> Response:
    await service.delete(session, Actor.of(principal), storage_id)
    return Response(status_code=204)


@router.post("/{storage_id}/mode")
async def change_mode(
    storage_id: str, body: ModeRequest, session: DbSession, state: State, principal: Writer
) -> JSONResponse:
    # The caller's token bound to that SE (minted here: the admin is the issuer), never
    # the caller's own token (architecture §10).
    token = await bound_for(state.settings, state.keys, principal, storage_id)
    status, answer = await service.change_mode(
        session, state.http, Actor.of(principal), token, storage_id, body
    )
    return JSONResponse(answer, status_code=status)


@router.post("/{storage_id}/refresh", response_model=StorageElement)
async def refresh(storage_id: str, session: DbSession, state: State, _: Writer) -> StorageElement:
    row = await service.refresh(session, state.http, state.events, storage_id)
    return StorageElement.of(row)
