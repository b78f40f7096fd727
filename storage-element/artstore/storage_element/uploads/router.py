"""HTTP routes of upload sessions (the SE side of tus; the ingester speaks tus itself).

``POST /api/v1/uploads`` creates, ``GET`` reports the offset, ``PATCH ?offset=N``
appends (answered once durable), ``DELETE`` aborts, ``POST .../complete`` stores the
file. All need files:write and only the session's creator may use it.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import ValidationFailed
from artstore.contracts.se import CHECKSUM_HEADER
from artstore.storage_element.files import access
from artstore.storage_element.files.schemas import FileMetadata
from artstore.storage_element.state import Node
from artstore.storage_element.uploads import service
from artstore.storage_element.uploads.schemas import Session, SessionCreate

router = APIRouter(prefix="/api/v1/uploads", tags=["upload sessions"])

Writer = Annotated[Principal, Depends(RequireScope("files:write"))]
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@router.post("", status_code=201, response_model=Session)
async def create_session(body: SessionCreate, node: Node, principal: Writer) -> Session:
    """A chosen ``file_id`` follows the upload rule (files/access.py): an id the catalog
    knows is 409 unless the caller holds storage:write or is a service account."""
    chosen = str(body.file_id) if body.file_id is not None else None
    await access.check_chosen_id(node, principal, chosen)
    return Session.of(await service.create(node, principal, body), node.settings.id)


@router.get("/{session_id}", response_model=Session)
async def get_session(session_id: uuid.UUID, node: Node, principal: Writer) -> Session:
    return Session.of(await service.status(node, principal, str(session_id)), node.settings.id)


@router.patch(
    "/{session_id}",
    response_model=Session,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def append(
    session_id: uuid.UUID,
    request: Request,
    node: Node,
    principal: Writer,
    offset: Annotated[int, Query(ge=0, description="Where these bytes go")],
) -> Session:
    expected = request.headers.get(CHECKSUM_HEADER)
    if expected is not None and not _HEX64.match(expected):
        raise ValidationFailed(f"{CHECKSUM_HEADER} must be 64 hex digits")
    session = await service.append(
        node,
        principal,
        str(session_id),
        offset,
        expected.lower() if expected else None,
        request.stream(),
    )
    return Session.of(session, node.settings.id)


@router.delete("/{session_id}", status_code=204)
async def abort(session_id: uuid.UUID, node: Node, principal: Writer) -> Response:
    await service.abort(node, principal, str(session_id))
    return Response(status_code=204)


@router.post("/{session_id}/complete", status_code=201, response_model=FileMetadata)
async def complete(session_id: uuid.UUID, node: Node, principal: Writer) -> FileMetadata:
    attr = await service.complete(node, principal, str(session_id))
    return FileMetadata.of(attr, node.settings.id)
