"""Preview sidecars over HTTP (issue 16, docs/previews.md "Storage on the SE").

``PUT /api/v1/files/{id}/previews/{size}`` stores an encoded image made by the job
worker next to the blob and names it in the attr (``FileStore.put_preview``: a
``preview`` change); ``GET`` serves it, ``DELETE`` removes it. The original blob and
its checksum are never touched.

- PUT and DELETE need ``storage:write`` (the SE-bound tokens the worker gets by token
  exchange carry it); a user's token without it is 403.
- GET needs ``files:read``, like a download, and the ``download`` operation.
- Writes need ``update`` (modes ``edit`` and ``rw``); ``ro`` and ``ar`` refuse them with
  409 ``MODE_NOT_ALLOWED`` (a read-only SE's bytes do not change, derived data included).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import ArtStoreError, FileTooLarge, NotFound, ValidationFailed
from artstore.storage_element.attr.model import (
    PREVIEW_MAX_SIZE,
    PREVIEW_MIN_SIZE,
    PreviewFormat,
    PreviewRef,
)
from artstore.storage_element.files import download
from artstore.storage_element.state import Node, SEState
from artstore.storage_element.store.filestore import sidecar_of

log = logging.getLogger("artstore.storage_element.previews")

router = APIRouter(prefix="/api/v1/files", tags=["previews"])

Reader = Annotated[Principal, Depends(RequireScope("files:read"))]
Operator = Annotated[Principal, Depends(RequireScope("storage:write"))]
Size = Annotated[
    int,
    Path(ge=PREVIEW_MIN_SIZE, le=PREVIEW_MAX_SIZE, description="the preview's longest side, px"),
]

MEDIA_TYPES: dict[str, PreviewFormat] = {"image/webp": "webp", "image/jpeg": "jpeg"}
CONTENT_TYPE_OF: dict[str, str] = {fmt: ctype for ctype, fmt in MEDIA_TYPES.items()}
CACHE_CONTROL = "private, max-age=86400"


class PreviewStored(BaseModel):
    file_id: str
    size: int
    format: PreviewFormat
    bytes: int
    sha256: str


_IMAGE_BODY: dict[str, object] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}} for media in MEDIA_TYPES
        },
    }
}
_IMAGE_ANSWER: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The preview image",
        "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in MEDIA_TYPES},
    },
    304: {"description": "Not modified (If-None-Match)"},
}


class NoPreview(NotFound):
    code = "NO_PREVIEW"


class UnsupportedMediaType(ArtStoreError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"


def format_of(content_type: str | None) -> PreviewFormat:
    """The preview format a request's Content-Type names (parameters ignored); 415 else."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    fmt = MEDIA_TYPES.get(media)
    if fmt is None:
        raise UnsupportedMediaType(
            "a preview is image/webp or image/jpeg",
            details={"content_type": media[:100], "allowed": sorted(MEDIA_TYPES)},
        )
    return fmt


def looks_like(fmt: PreviewFormat, data: bytes) -> bool:
    """Whether ``data`` starts as a ``fmt`` file does (its magic bytes)."""
    if fmt == "webp":
        return (
            len(data) >= 16
            and data[:4] == b"RIFF"
            and data[8:12] == b"WEBP"
            and data[12:16] in (b"VP8 ", b"VP8L", b"VP8X")
        )
    return len(data) >= 4 and data[:3] == b"\xff\xd8\xff"


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ValidationFailed("Content-Length is not a number") from None
        if length > limit:
            raise _too_large(limit)
    parts: list[bytes] = []
    got = 0
    async for chunk in request.stream():
        got += len(chunk)
        if got > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _too_large(limit: int) -> FileTooLarge:
    return FileTooLarge(f"a preview may take at most {limit} bytes", details={"limit": limit})


@router.put(
    "/{file_id}/previews/{size}",
    status_code=201,
    response_model=PreviewStored,
    responses={200: {"model": PreviewStored, "description": "That very preview was there"}},
    openapi_extra=_IMAGE_BODY,
)
async def put_preview(
    file_id: uuid.UUID, size: Size, request: Request, node: Node, _: Operator
) -> Response:
    """Store (or replace) the preview of longest side ``size``: 201 when stored, 200
    when the very same preview was there already."""
    fmt = format_of(request.headers.get("content-type"))
    node.modes.require("update")
    data = await _body(request, node.settings.preview_max_bytes)
    if not looks_like(fmt, data):
        raise ValidationFailed(
            f"the body is not a {fmt} image", details={"field": "body", "format": fmt}
        )
    digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    ref = PreviewRef(size=size, format=fmt, bytes=len(data), sha256=digest)
    _attr, changed = await node.store.put_preview(str(file_id), ref, data)
    body = PreviewStored(file_id=str(file_id), size=size, format=fmt, bytes=len(data),
                         sha256=digest)  # fmt: skip
    return JSONResponse(body.model_dump(), status_code=201 if changed else 200)


@router.get("/{file_id}/previews/{size}", response_model=None, responses=_IMAGE_ANSWER)
async def get_preview(
    file_id: uuid.UUID, size: Size, request: Request, node: Node, _: Reader
) -> Response:
    """The preview's bytes, with its digest as ETag; 404 ``NO_PREVIEW`` when the attr
    names none of that size (or its sidecar is missing or damaged)."""
    node.modes.require("download")
    attr = await node.get_attr(str(file_id))
    download.ensure_downloadable(attr)
    ref = attr.preview(size)
    if ref is None:
        raise _no_preview(str(file_id), size)
    etag = f'"{ref.sha256}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if etag in _etags(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    data = await _read(node, attr.storage_path, ref)
    if data is None:
        raise _no_preview(str(file_id), size)
    return Response(data, headers=headers, media_type=CONTENT_TYPE_OF[ref.format])


@router.delete("/{file_id}/previews/{size}", status_code=204)
async def delete_preview(file_id: uuid.UUID, size: Size, node: Node, _: Operator) -> Response:
    node.modes.require("update")
    if await node.store.drop_preview(str(file_id), size) is None:
        raise _no_preview(str(file_id), size)
    return Response(status_code=204)


def _no_preview(file_id: str, size: int) -> NoPreview:
    return NoPreview(
        f"file {file_id} has no preview of size {size}",
        details={"file_id": file_id, "size": size},
    )


def _etags(header: str | None) -> list[str]:
    if not header:
        return []
    return [t.strip().removeprefix("W/") for t in header.split(",")]


async def _read(node: SEState, storage_path: str, ref: PreviewRef) -> bytes | None:
    """The sidecar's bytes when they are what the attr says; None when missing or
    damaged (the worker makes it again; reconcile drops the attr's entry)."""
    path = sidecar_of(storage_path, ref)

    def read() -> bytes | None:
        try:
            data = node.backend.read_sidecar(path)
        except FileNotFoundError:
            return None
        if len(data) != ref.bytes or hashlib.sha256(data).hexdigest() != ref.sha256:
            log.error("preview sidecar damaged", extra={"fields": {"path": path}})
            return None
        return data

    return await asyncio.to_thread(read)
