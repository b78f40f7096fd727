"""HTTP routes of upload sessions (the SE side of tus; the ingester speaks tus itself).

``POST /api/v1/uploads`` creates, ``GET`` reports the offset, ``PATCH ?offset=N``
appends (answered once durable), ``DELETE`` aborts, ``POST .../complete`` stores the
file. All need files:write and only the session's creator may use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import ValidationFailed
from artstore.contracts.se import CHECKSUM_HEADER, CONTENT_DIGEST_HEADER, SESSION_DIGESTS
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
    """Bytes at ``offset``, answered once durable. A chunk's digest (``X-Checksum-SHA256``,
    or ``Content-Digest`` in sha-256, sha or md5) makes it all or nothing; without one, a
    body cut short keeps what arrived (tus: the next offset says how much)."""
    session = await service.append(
        node, principal, str(session_id), offset, _chunk_digest(request), request.stream()
    )
    return Session.of(session, node.settings.id)


def _chunk_digest(request: Request) -> tuple[str, str] | None:
    """(hashlib name, hex digest) the client announced for this chunk, or None."""
    expected = request.headers.get(CHECKSUM_HEADER)
    if expected is not None:
        if not _HEX64.match(expected):
            raise ValidationFailed(f"{CHECKSUM_HEADER} must be 64 hex digits")
        return "sha256", expected.lower()
    header = request.headers.get(CONTENT_DIGEST_HEADER)
    if not header:
        return None
    for item in header.split(",")[:8]:
        key, _, value = item.strip().partition("=")
        name = SESSION_DIGESTS.get(key.strip().lower())
        if name is None:
            continue
        value = value.strip()
        if not (len(value) > 2 and value.startswith(":") and value.endswith(":")):
            raise ValidationFailed(f"{CONTENT_DIGEST_HEADER} {key} must be :base64:")
        try:
            digest = base64.b64decode(value[1:-1], validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(f"{CONTENT_DIGEST_HEADER} {key} is not base64") from None
        if len(digest) != hashlib.new(name).digest_size:
            raise ValidationFailed(f"{CONTENT_DIGEST_HEADER} {key} has the wrong length")
        return name, digest.hex()
    raise ValidationFailed(
        f"{CONTENT_DIGEST_HEADER}: no supported algorithm",
        details={"supported": list(SESSION_DIGESTS)},
    )


@router.delete("/{session_id}", status_code=204)
async def abort(session_id: uuid.UUID, node: Node, principal: Writer) -> Response:
    await service.abort(node, principal, str(session_id))
    return Response(status_code=204)


@router.post("/{session_id}/complete", status_code=201, response_model=FileMetadata)
async def complete(session_id: uuid.UUID, node: Node, principal: Writer) -> FileMetadata:
    attr = await service.complete(node, principal, str(session_id))
    return FileMetadata.of(attr, node.settings.id)
