"""``/api/v1/files/{id}``: metadata and downloads (files:read) (architecture §8)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from artstore.common.auth import Principal, RequireScope
from artstore.common.registry import StorageElementRef
from artstore.query.files import proxy, service
from artstore.query.search.schemas import FileItem
from artstore.query.state import State

router = APIRouter(prefix="/api/v1/files", tags=["files"])

Reader = Annotated[Principal, Depends(RequireScope("files:read"))]


@router.get("/{file_id}", response_model=FileItem)
async def get_file(file_id: uuid.UUID, state: State, _: Reader) -> Response:
    """Metadata of any file, deleted ones included (200 with `status: deleted`)."""
    # The answer's JSON as built (or cached) by the service: FastAPI would validate and
    # serialise the same FileItem again; response_model still documents it.
    return Response(await service.metadata(state, str(file_id)), media_type="application/json")


@router.api_route("/{file_id}/download", methods=["GET", "HEAD"], response_model=None)
async def download_file(
    file_id: uuid.UUID, request: Request, state: State, principal: Reader
) -> Response:
    """Streams from a copy on an online SE with the caller's token exchanged for one bound
    to that SE (so the SE enforces the same scopes); Range and conditional headers pass
    through."""
    fid = str(file_id)
    copies = await service.downloadable_copies(state, fid, recent=True)

    async def token_for(se: StorageElementRef) -> str:
        return await state.se_tokens.for_caller(state.http, principal.token, se.storage_id)

    return await proxy.download(
        state, fid, copies, request.method, dict(request.headers), token_for
    )
