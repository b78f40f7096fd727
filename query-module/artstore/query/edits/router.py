"""``PATCH`` and ``DELETE /api/v1/files/{id}``: a file's description, tags and metadata,
and its deletion, relayed to every live copy (docs/query.md, "Editing")."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Response

from artstore.common.auth import Principal, RequireScope
from artstore.query.edits import service
from artstore.query.edits.schemas import FileEdit
from artstore.query.search.schemas import FileItem
from artstore.query.state import State

router = APIRouter(prefix="/api/v1/files", tags=["files"])

Writer = Annotated[Principal, Depends(RequireScope("files:write"))]
Deleter = Annotated[Principal, Depends(RequireScope("files:delete"))]

_RELAY_ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "No such file"},
    410: {"description": "Every copy is deleted or expired"},
    502: {
        "description": "Some copies could not be changed: `details.failed` names them "
        "(storage_element_id, status, code, message), `details.changed` the ones that were"
    },
}


@router.patch("/{file_id}", response_model=FileItem, responses=_RELAY_ERRORS)
async def edit_file(
    file_id: uuid.UUID, edit: Annotated[FileEdit, Body()], state: State, principal: Writer
) -> FileItem:
    """Replace the description, tags and/or metadata (at least one) on every live copy,
    each SE asked with a token bound to it acting for the caller (so each enforces
    ownership and its mode). The copy that speaks for the file goes first: its refusal
    (403 not the owner, 409 mode, 400/413/422) is the answer and no copy is changed."""
    return await service.edit(state, str(file_id), principal.token, edit.changes())


@router.delete("/{file_id}", status_code=204, responses=_RELAY_ERRORS)
async def delete_file(file_id: uuid.UUID, state: State, principal: Deleter) -> Response:
    """Delete (a tombstone) every live copy; SEs that do not allow deletes (any mode but
    `edit`) refuse with 409 `MODE_NOT_ALLOWED`, passed on."""
    await service.delete(state, str(file_id), principal.token)
    return Response(status_code=204)
