"""List parameters and the list envelope of architecture §3."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_LIMIT = 1000
# Deeper than this, page with filters (time ranges) instead: OFFSET makes PostgreSQL walk
# every skipped row, and a value past int64 is a driver error, not an empty page.
MAX_OFFSET = 10_000_000
# Every other count or size a client gives: PostgreSQL's bigint.
MAX_INT64 = 2**63 - 1


class PageParams(BaseModel):
    limit: int = 100
    offset: int = 0


# async: FastAPI runs a plain ``def`` dependency on its thread pool (a hop per request).
async def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Pagination = Annotated[PageParams, Depends(_page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
    has_more: bool

    @classmethod
    def of(cls, items: list[T], total: int, params: PageParams) -> Page[T]:
        return cls(
            items=items,
            total=total,
            limit=params.limit,
            offset=params.offset,
            has_more=params.offset + len(items) < total,
        )
