"""``GET /api/v1/files/{id}/preview`` (files:read) and the same through a signed link
(docs/previews.md "Query")."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import ArtStoreError
from artstore.common.redact import describe
from artstore.common.registry import StorageElementRef
from artstore.common.se_tokens import ExchangeRefused
from artstore.query.previews import service
from artstore.query.previews.service import CACHE_CONTROL, Pending, Preview
from artstore.query.state import QueryState, State

router = APIRouter(prefix="/api/v1", tags=["previews"])

Reader = Annotated[Principal, Depends(RequireScope("files:read"))]
Size = Annotated[
    int | None,
    Query(ge=1, le=65536, description="Longest side (px): one of `QM_PREVIEW_SIZES`; "
          "default the smallest"),
]  # fmt: skip
PENDING_RETRY_SECONDS = 30
_IMAGE = {"schema": {"type": "string", "format": "binary"}}
_ENVELOPE = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/webp": _IMAGE, "image/jpeg": _IMAGE}, "description": "The preview"},
    202: {
        "description": "Not made yet: ask again later (`Retry-After`)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    304: {"description": "The preview is unchanged (`If-None-Match`)"},
    404: {
        "description": "Unknown file, or `NO_PREVIEW`: none can be made of it",
        "content": _ENVELOPE,
    },
}


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match or not etag:
        return False
    wanted = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


async def _answer(
    state: QueryState, request: Request, file_id: str, size: int | None, token_for: Any
) -> Response:
    chosen = size if size is not None else min(state.settings.preview_size_set())
    got = await service.preview(state, file_id, chosen, token_for)
    if isinstance(got, Pending):
        return JSONResponse(
            {"status": "pending", "file_id": file_id, "size": chosen, "message": got.reason},
            status_code=202,
            headers={"Retry-After": str(PENDING_RETRY_SECONDS), "Cache-Control": "no-store"},
        )
    assert isinstance(got, Preview)
    headers = {"Cache-Control": CACHE_CONTROL}
    if got.etag:
        headers["ETag"] = got.etag
    if _matches(request.headers.get("if-none-match"), got.etag):
        return Response(status_code=304, headers=headers)
    return Response(got.data, media_type=got.content_type, headers=headers)


@router.get("/files/{file_id}/preview", response_class=Response, responses=_RESPONSES)
async def get_preview(
    file_id: uuid.UUID, request: Request, state: State, principal: Reader, size: Size = None
) -> Response:
    """A preview of the file (WebP or JPEG, longest side `size`); any file a caller with
    `files:read` may see, as its metadata."""

    async def token_for(se: StorageElementRef) -> str:
        return await state.se_tokens.for_caller(state.http, principal.token, se.storage_id)

    return await _answer(state, request, str(file_id), size, token_for)


@router.get("/links/{token}/preview", response_class=Response, responses=_RESPONSES)
async def get_link_preview(
    token: str, request: Request, state: State, size: Size = None
) -> Response:
    """The preview of a signed link's file: the link's signature is the credential."""
    try:
        link = state.signer.verify(token, time.time())
    except ArtStoreError as exc:
        state.metrics.links.labels("expired" if exc.status == 410 else "invalid").inc()
        raise

    async def token_for(se: StorageElementRef) -> str:
        try:
            return await state.se_tokens.for_service(state.http, se.storage_id)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ExchangeRefused(
                "cannot get a service token to read the preview",
                details={"reason": describe(exc)},
            ) from exc

    return await _answer(state, request, link.file_id, size, token_for)
