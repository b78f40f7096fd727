"""HTTP routes of the uploads domain (architecture §7): single (multipart or raw) and batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import FileTooLarge, ValidationFailed
from artstore.common.multipart import MultipartReader, boundary_of
from artstore.common.text import check_media_type, decode_query
from artstore.contracts.se import CHECKSUM_HEADER, CONTENT_DIGEST_HEADER
from artstore.ingester.state import IngesterDep
from artstore.ingester.uploads.batch import capped, store_batch
from artstore.ingester.uploads.digest import announced_sha256
from artstore.ingester.uploads.fields import IngestFields
from artstore.ingester.uploads.parts import single_file
from artstore.ingester.uploads.schemas import BatchResult, StoredFile
from artstore.ingester.uploads.service import Incoming, store

router = APIRouter(prefix="/api/v1/files", tags=["uploads"])

Writer = Annotated[Principal, Depends(RequireScope("files:write"))]
_ENVELOPE_SLACK = 64 * 1024
# The empty examples are what Swagger UI's form starts with (else "string", 1...): it
# sends every field, and a field sent empty is not given (fields.py), so choosing a file
# and `permanent` is a valid upload from that form (issue 17).
_FIELDS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("description", {"type": "string", "examples": [""]}, "free text"),
    ("tags", {"type": "array", "items": {"type": "string"}, "examples": [[]]},
     "repeat for each tag"),
    ("metadata", {"type": "string", "examples": [""]}, "JSON object of string values"),
    ("retention_policy", {"enum": ["temporary", "permanent"]}, "default temporary"),
    ("ttl_days", {"type": "integer", "minimum": 1, "maximum": 3650, "examples": [""]},
     "temporary only"),
)  # fmt: skip
_CHECKSUM_HEADERS: list[dict[str, Any]] = [
    {"name": CHECKSUM_HEADER, "in": "header", "required": False,
     "schema": {"type": "string"}, "description": "hex SHA-256 the file must have"},
    {"name": CONTENT_DIGEST_HEADER, "in": "header", "required": False,
     "schema": {"type": "string"}, "description": "RFC 9530, sha-256=:<base64>:"},
]  # fmt: skip
_MULTIPART_DOC: dict[str, Any] = {
    "parameters": _CHECKSUM_HEADERS,
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    # Fields first: Swagger UI sends the parts in this order, and the
                    # streaming parser takes fields only before the file (parts.py).
                    "properties": {
                        **{name: schema for name, schema, _ in _FIELDS},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    },
}
_RAW_DOC: dict[str, Any] = {
    "parameters": [
        {"name": "filename", "in": "query", "required": True, "schema": {"type": "string"}},
        *(
            {"name": n, "in": "query", "required": False, "schema": s, "description": d}
            for n, s, d in _FIELDS
        ),
        *_CHECKSUM_HEADERS,
    ],
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}
_BATCH_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        **{name: schema for name, schema, _ in _FIELDS},
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                }
            }
        },
    },
}


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        return max(0, int(value))
    except ValueError:
        raise ValidationFailed("Content-Length is not a number") from None


def expected_checksum(request: Request) -> str | None:
    return announced_sha256(
        request.headers.get(CONTENT_DIGEST_HEADER), request.headers.get(CHECKSUM_HEADER)
    )


def _check_size(length: int | None, limit: int) -> None:
    if length is not None and length > limit:
        raise FileTooLarge(f"file exceeds {limit} bytes", details={"max_file_size": limit})


def _created(response: Response, stored: StoredFile) -> StoredFile:
    response.headers["Location"] = f"/api/v1/files/{stored.file_id}"
    return stored


@router.post("/upload", status_code=201, response_model=StoredFile, openapi_extra=_MULTIPART_DOC)
async def upload_multipart(
    request: Request, response: Response, ing: IngesterDep, principal: Writer
) -> StoredFile:
    """Upload one file as multipart/form-data (fields first, then the `file` part)."""
    length = content_length(request)
    _check_size(length, ing.settings.max_file_size + _ENVELOPE_SLACK)
    expected = expected_checksum(request)
    fields = IngestFields()
    events = MultipartReader(
        request.stream(), boundary_of(request.headers.get("content-type", ""))
    ).events()
    start, body = await single_file(events, fields.apply)
    start.check()  # the part's filename and content type are valid text
    fields.filename = fields.filename or start.filename
    hint = max(0, (length or 0) - _ENVELOPE_SLACK)
    incoming = Incoming(fields, start.content_type, size_hint=hint, expected_sha256=expected)
    return _created(response, await store(ing, principal, incoming, body))


@router.put("/upload", status_code=201, response_model=StoredFile, openapi_extra=_RAW_DOC)
async def upload_raw(
    request: Request, response: Response, ing: IngesterDep, principal: Writer
) -> StoredFile:
    """Upload one file as the raw body, its fields in the query string."""
    fields = IngestFields()
    # Decoded strictly: Starlette's query_params would turn bad UTF-8 into U+FFFD.
    for name, value in decode_query(request.scope["query_string"]):
        fields.apply(name, value)
    if not fields.filename:
        raise ValidationFailed("filename is required", details={"field": "filename"})
    ctype = check_media_type(
        "content_type", request.headers.get("content-type", "application/octet-stream")
    )
    length = content_length(request)
    _check_size(length, ing.settings.max_file_size)
    incoming = Incoming(
        fields,
        ctype,
        length=length,
        size_hint=length or 0,
        expected_sha256=expected_checksum(request),
    )
    return _created(response, await store(ing, principal, incoming, request.stream()))


@router.post("/batch", response_model=BatchResult, openapi_extra=_BATCH_DOC)
async def upload_batch(request: Request, ing: IngesterDep, principal: Writer) -> BatchResult:
    """Many `file` parts in one request; each is stored or fails on its own."""
    limit = ing.settings.batch_max_bytes
    length = content_length(request)
    if length is not None and length > limit:
        raise FileTooLarge(f"batch exceeds {limit} bytes", details={"batch_max_bytes": limit})
    events = MultipartReader(
        capped(request.stream(), limit), boundary_of(request.headers.get("content-type", ""))
    ).events()
    return await store_batch(ing, principal, events)
