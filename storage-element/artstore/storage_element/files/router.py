"""HTTP routes of the files domain (architecture §5.5)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import StorageFull, ValidationFailed
from artstore.common.multipart import (
    Field,
    FileData,
    FileEnd,
    FileStart,
    MultipartReader,
    boundary_of,
)
from artstore.common.pagination import Page, Pagination
from artstore.common.text import check_media_type, decode_query
from artstore.contracts.se import CHECKSUM_HEADER, CONTENT_DIGEST_HEADER, FILE_PART
from artstore.storage_element.files import access, download, queries
from artstore.storage_element.files.fields import UploadFields, expected_checksum
from artstore.storage_element.files.mutate import delete_file, update_file
from artstore.storage_element.files.schemas import FileMetadata, FilePatch, ListStatus
from artstore.storage_element.files.upload import UploadRequest, store_upload
from artstore.storage_element.maintenance.quarantine import quarantine
from artstore.storage_element.state import Node

router = APIRouter(prefix="/api/v1/files", tags=["files"])

Reader = Annotated[Principal, Depends(RequireScope("files:read"))]
Writer = Annotated[Principal, Depends(RequireScope("files:write"))]
Deleter = Annotated[Principal, Depends(RequireScope("files:delete"))]
_ENVELOPE_SLACK = 64 * 1024

_UPLOAD_DOC: dict[str, Any] = {
    "parameters": [
        {"name": n, "in": "query", "required": False, "schema": s, "description": d}
        for n, s, d in (
            ("filename", {"type": "string"}, "raw body only: the file's name"),
            ("description", {"type": "string"}, "free text"),
            ("tags", {"type": "array", "items": {"type": "string"}}, "repeat for each tag"),
            ("metadata", {"type": "string"}, "JSON object of string values"),
            ("retention_policy", {"enum": ["temporary", "permanent"]}, "defaults to the SE's kind"),
            ("ttl_days", {"type": "integer", "minimum": 1, "maximum": 3650}, "temporary only"),
            (
                "file_id",
                {"type": "string", "format": "uuid"},
                "store under this id; an id the catalog knows needs storage:write or a "
                "service account (409)",
            ),
            *(
                (n, {"type": "string"}, "service accounts only (403): the copy's history")
                for n in access.HISTORY_FIELDS
            ),
        )
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "description": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "metadata": {"type": "string"},
                        "retention_policy": {"enum": ["temporary", "permanent"]},
                        "ttl_days": {"type": "integer"},
                        "file_id": {"type": "string", "format": "uuid"},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        return max(0, int(value))
    except ValueError:
        raise ValidationFailed("Content-Length is not a number") from None


def _json(
    answer: FileMetadata, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The answer's JSON written by pydantic at once: with a model returned, FastAPI
    would check it against ``response_model`` again and serialise it through a dict and
    ``json.dumps`` (issue 19); ``response_model`` still documents it."""
    return Response(
        answer.model_dump_json(),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


@router.post("", status_code=201, response_model=FileMetadata, openapi_extra=_UPLOAD_DOC)
async def upload_file(request: Request, node: Node, principal: Writer) -> Response:
    fields = UploadFields()
    # Decoded strictly: Starlette's query_params would turn bad UTF-8 into U+FFFD.
    params = decode_query(request.scope["query_string"])
    history = access.history_of(principal, params)
    if history is not None and "uploaded_by" in history:
        # The copy is the uploader's (its storage name too), not the service account's.
        principal = dataclasses.replace(principal, sub=history["uploaded_by"])
    for name, value in params:
        fields.apply(name, value)
    expected = expected_checksum(
        request.headers.get(CONTENT_DIGEST_HEADER), request.headers.get(CHECKSUM_HEADER)
    )
    content_type = request.headers.get("content-type", "application/octet-stream")
    length = _content_length(request)
    if content_type.lower().startswith("multipart/form-data"):
        # The envelope is a little larger than the file: enough to refuse early, not exact.
        if length is not None and length > node.capacity.available_bytes() + _ENVELOPE_SLACK:
            raise StorageFull(
                "not enough room for this upload",
                details={"available_bytes": node.capacity.available_bytes()},
            )
        req, body = await _multipart(request, principal, fields, expected)
    else:
        ctype = check_media_type("content_type", content_type)
        req = UploadRequest(principal, fields, ctype, length, expected)
        body = request.stream()
    req.history = history
    if fields.file_id is not None:  # the id store_upload will use (fields before the file)
        await access.check_chosen_id(node, principal, fields.file_id)
    attr = await store_upload(node, req, body)
    location = {"Location": f"/api/v1/files/{attr.file_id}"}
    return _json(FileMetadata.of(attr, node.settings.id), 201, location)


async def _multipart(
    request: Request, principal: Principal, fields: UploadFields, expected: str | None
) -> tuple[UploadRequest, AsyncIterator[bytes]]:
    events = MultipartReader(
        request.stream(), boundary_of(request.headers["content-type"])
    ).events()
    start: FileStart | None = None
    async for event in events:
        if isinstance(event, Field):
            access.refuse_form_history(event.name)
            fields.apply(event.name, event.value)
        elif isinstance(event, FileStart):
            if event.name != FILE_PART:
                raise ValidationFailed(f"the file part must be named '{FILE_PART}'")
            start = event.check()  # its filename and content type are valid text
            break
    if start is None:
        raise ValidationFailed(
            f"multipart body has no '{FILE_PART}' part", details={"field": FILE_PART}
        )
    if fields.filename is None:
        fields.filename = start.filename

    async def body() -> AsyncIterator[bytes]:
        async for event in events:
            if isinstance(event, FileData):
                yield event.data
            elif isinstance(event, FileEnd):
                break
        async for event in events:  # fields after the file part
            if isinstance(event, Field):
                access.refuse_form_history(event.name)
                fields.apply(event.name, event.value)
            elif isinstance(event, FileStart):
                raise ValidationFailed("one file per request")

    return UploadRequest(principal, fields, start.content_type, None, expected), body()


@router.get("", response_model=Page[FileMetadata])
async def list_files(
    node: Node,
    _: Reader,
    page: Pagination,
    status: Annotated[ListStatus | None, Query(description="default: active and expired")] = None,
) -> Page[FileMetadata]:
    node.modes.require("list")
    statuses: list[str] = [status] if status else ["active", "expired"]
    attrs, total = await queries.list_files(node, statuses, page.limit, page.offset)
    return Page.of([FileMetadata.of(a, node.settings.id) for a in attrs], total, page)


@router.get("/{file_id}", response_model=FileMetadata)
async def get_file(file_id: uuid.UUID, node: Node, _: Reader) -> Response:
    node.modes.require("list")
    return _json(FileMetadata.of(await queries.metadata(node, str(file_id)), node.settings.id))


@router.patch("/{file_id}", response_model=FileMetadata)
async def patch_file(
    file_id: uuid.UUID, patch: Annotated[FilePatch, Body()], node: Node, principal: Writer
) -> FileMetadata:
    await access.require_owner(node, principal, str(file_id))
    return FileMetadata.of(await update_file(node, str(file_id), patch), node.settings.id)


@router.delete("/{file_id}", status_code=204)
async def remove_file(file_id: uuid.UUID, node: Node, principal: Deleter) -> Response:
    await access.require_owner(node, principal, str(file_id))
    await delete_file(node, str(file_id))
    return Response(status_code=204)


@router.api_route("/{file_id}/download", methods=["GET", "HEAD"], response_model=None)
async def download_file(file_id: uuid.UUID, request: Request, node: Node, _: Reader) -> Response:
    node.modes.require("download")
    chunk = node.settings.io_chunk_bytes
    opened = await download.open_download(
        node, str(file_id), request.headers, request.method, chunk
    )
    attr, plan, headers = opened.attr, opened.plan, opened.headers
    if plan.status == 304 or request.method == "HEAD":
        return Response(status_code=plan.status, headers=headers)
    if opened.body is not None:
        body, first = opened.body, opened.first
    else:
        redirect = await download.presigned_redirect(
            node, attr, plan, request.method, request.headers
        )
        if redirect is not None:
            return redirect
        body, first = await download.BlobBody.open(node, attr, plan, chunk)

    async def quarantine_copy() -> None:
        node.maintenance.download_mismatches += 1
        async with node.file_locked(attr.file_id):
            await quarantine(node, attr.storage_path, attr.file_id, "checksum_mismatch (download)")

    return download.BlobResponse(
        body,
        first,
        status_code=plan.status,
        headers=headers,
        on_mismatch=quarantine_copy,
        media_type=attr.content_type,
    )
