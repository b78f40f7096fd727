"""tus 1.0 resumable uploads (architecture §7): core, creation, termination, checksum and
expiration. Upload URLs are ``/api/v1/uploads/{storage_id}/{file_id}``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import ArtStoreError, FileTooLarge, ValidationFailed
from artstore.ingester.state import IngesterDep
from artstore.ingester.tus import protocol, service
from artstore.ingester.tus.protocol import VERSION

router = APIRouter(prefix="/api/v1/uploads", tags=["resumable uploads (tus)"])

Writer = Annotated[Principal, Depends(RequireScope("files:write"))]
TusResumable = Annotated[str | None, Header(alias="Tus-Resumable")]


def _headers(p: service.Progress | None = None) -> dict[str, str]:
    out = {"Tus-Resumable": VERSION, "Cache-Control": "no-store"}
    if p is not None:
        out["Upload-Offset"] = str(p.offset)
        out["Upload-Length"] = str(p.length)
        if p.expires_at is not None and p.file is None:
            out["Upload-Expires"] = protocol.http_date(p.expires_at)
        if p.file is not None:
            out["X-File-ID"] = p.file.file_id
    return out


@router.options("", status_code=204, response_class=Response)
async def capabilities(ing: IngesterDep) -> Response:
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": VERSION,
            "Tus-Version": VERSION,
            "Tus-Extension": protocol.EXTENSIONS,
            "Tus-Max-Size": str(ing.settings.max_file_size),
            "Tus-Checksum-Algorithm": protocol.CHECKSUM_ALGORITHMS,
        },
    )


@router.post("", status_code=201)
async def create_upload(
    request: Request,
    ing: IngesterDep,
    principal: Writer,
    tus_resumable: TusResumable = None,
    upload_length: Annotated[str | None, Header(alias="Upload-Length")] = None,
    upload_metadata: Annotated[str | None, Header(alias="Upload-Metadata")] = None,
    upload_checksum: Annotated[str | None, Header(alias="Upload-Checksum")] = None,
) -> Response:
    """Creation. Upload-Metadata keys: filename, filetype, description, tags (JSON array
    or comma-separated), metadata (JSON object), retention_policy, ttl_days, checksum
    (hex SHA-256 of the whole file). Answers Location and X-File-ID (the file's id).

    Creation with upload: a body (Content-Type application/offset+octet-stream) is the
    upload's first bytes, stored as a PATCH at offset 0 would store them (Upload-Checksum
    too); Upload-Offset says how many. Should storing them fail, the error carries the
    Location: the upload exists and can be resumed."""
    protocol.require_version(tus_resumable)
    with_body = _has_body(request)
    if with_body:
        _require_offset_type(request)
    chunk_digest = protocol.upload_checksum(upload_checksum)
    if request.headers.get("upload-defer-length") is not None:
        raise ValidationFailed("Upload-Defer-Length is not supported: send Upload-Length")
    length = protocol.int_header(upload_length, "Upload-Length")
    if length > ing.settings.max_file_size:
        raise FileTooLarge(
            f"file exceeds {ing.settings.max_file_size} bytes",
            details={"max_file_size": ing.settings.max_file_size},
            headers={"Tus-Resumable": VERSION},
        )
    meta = protocol.parse_metadata(upload_metadata)
    se, progress, file_id = await service.create(ing, principal, length, meta)
    base = ing.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    where = {
        "Location": f"{base}/api/v1/uploads/{se.storage_id}/{file_id}",
        "X-File-ID": file_id,
    }
    if with_body:
        try:
            progress = await service.append(
                ing, principal, se, file_id, 0, chunk_digest, _length(request), request.stream()
            )
        except ArtStoreError as err:
            err.headers = {**(err.headers or {}), **where}
            raise
    return Response(status_code=201, headers=_headers(progress) | where)


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


def _length(request: Request) -> int | None:
    length = request.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


def _require_offset_type(request: Request) -> None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != protocol.OFFSET_TYPE:
        raise protocol.UnsupportedMediaType(f"Content-Type must be {protocol.OFFSET_TYPE}")


@router.head("/{storage_id}/{file_id}")
async def upload_offset(
    storage_id: str,
    file_id: uuid.UUID,
    ing: IngesterDep,
    principal: Writer,
    tus_resumable: TusResumable = None,
) -> Response:
    protocol.require_version(tus_resumable)
    se = service.resolve(ing, storage_id)
    progress = await service.progress(ing, principal, se, str(file_id))
    return Response(status_code=200, headers=_headers(progress))


@router.patch(
    "/{storage_id}/{file_id}",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {protocol.OFFSET_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_chunk(
    storage_id: str,
    file_id: uuid.UUID,
    request: Request,
    ing: IngesterDep,
    principal: Writer,
    tus_resumable: TusResumable = None,
    upload_offset: Annotated[str | None, Header(alias="Upload-Offset")] = None,
    upload_checksum: Annotated[str | None, Header(alias="Upload-Checksum")] = None,
) -> Response:
    """Bytes at Upload-Offset; answered once they are durable on the SE. The PATCH that
    brings the offset to Upload-Length stores the file (X-File-ID in the answer)."""
    protocol.require_version(tus_resumable)
    _require_offset_type(request)
    offset = protocol.int_header(upload_offset, "Upload-Offset")
    chunk_digest = protocol.upload_checksum(upload_checksum)
    se = service.resolve(ing, storage_id)
    progress = await service.append(
        ing, principal, se, str(file_id), offset, chunk_digest, _length(request), request.stream()
    )
    return Response(status_code=204, headers=_headers(progress))


@router.delete("/{storage_id}/{file_id}", status_code=204)
async def terminate_upload(
    storage_id: str,
    file_id: uuid.UUID,
    ing: IngesterDep,
    principal: Writer,
    tus_resumable: TusResumable = None,
) -> Response:
    """Termination: the partial data is removed from the SE."""
    protocol.require_version(tus_resumable)
    se = service.resolve(ing, storage_id)
    await service.terminate(ing, principal, se, str(file_id))
    return Response(status_code=204, headers={"Tus-Resumable": VERSION})
