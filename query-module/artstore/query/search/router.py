"""``/api/v1/search`` (files:read): POST with every filter, GET ``?q=`` for quick use."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Response

from artstore.common.auth import Principal, RequireScope
from artstore.common.bounds import Int64, Name, SearchText
from artstore.common.pagination import MAX_LIMIT, MAX_OFFSET
from artstore.common.text import FILENAME_MAX_BYTES, MAX_TAGS
from artstore.query.search import service
from artstore.query.search.schemas import SearchPage, SearchRequest, SortBy, Status
from artstore.query.state import State

router = APIRouter(prefix="/api/v1/search", tags=["search"])

Reader = Annotated[Principal, Depends(RequireScope("files:read"))]


def _json(page: bytes) -> Response:
    """The page as the service encoded it. Returned as a model, FastAPI would dump it and
    validate it again against ``response_model`` before encoding (~3 ms for 100 items,
    more than many searches' SQL); ``response_model`` stays for the OpenAPI schema."""
    return Response(page, media_type="application/json")


@router.post("", response_model=SearchPage)
async def search(
    state: State, _: Reader, body: Annotated[SearchRequest | None, Body()] = None
) -> Response:
    """Every filter of architecture §8; an empty body lists active files, newest first."""
    return _json(await service.search(state, body or SearchRequest()))


@router.get("", response_model=SearchPage)
async def quick_search(
    state: State,
    _: Reader,
    q: Annotated[SearchText | None, Query(description="Full text, ranked")] = None,
    filename: Annotated[Name | None, Query(max_length=FILENAME_MAX_BYTES)] = None,
    match: Literal["exact", "partial"] = "partial",
    file_extension: Name | None = None,
    content_type: Name | None = None,
    tags: Annotated[
        list[Name] | None, Query(description="Repeat; all must match", max_length=MAX_TAGS)
    ] = None,
    uploaded_by: Name | None = None,
    retention_policy: Literal["temporary", "permanent"] | None = None,
    status: Status = "active",
    min_size: Annotated[Int64 | None, Query()] = None,
    max_size: Annotated[Int64 | None, Query()] = None,
    uploaded_after: datetime | None = None,
    uploaded_before: datetime | None = None,
    sort_by: SortBy | None = None,
    sort_order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """The same search from a URL (`metadata` pairs need the POST form)."""
    req = SearchRequest(
        query=q,
        filename=filename,
        match=match,
        file_extension=file_extension,
        content_type=content_type,
        tags=tags,
        uploaded_by=uploaded_by,
        retention_policy=retention_policy,
        status=status,
        min_size=min_size,
        max_size=max_size,
        uploaded_after=uploaded_after,
        uploaded_before=uploaded_before,
        sort_by=sort_by,
        sort_order=sort_order,
        limit=limit,
        offset=offset,
    )
    return _json(await service.search(state, req))
