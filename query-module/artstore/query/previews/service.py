"""Serving previews (docs/previews.md "Query"): the image from an SE holding it, 202
while it may still be made, 404 ``NO_PREVIEW`` when it never will be."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy.exc import DBAPIError, OperationalError

from artstore.common.errors import (
    ArtStoreError,
    FileGone,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from artstore.common.redact import describe
from artstore.common.registry import StorageElementRef
from artstore.common.se_client import StorageElementClient
from artstore.contracts.files import is_previewable
from artstore.query.previews import repository
from artstore.query.state import QueryState

log = logging.getLogger("artstore.query.previews")

CACHE_CONTROL: Final = "private, max-age=86400"


class NoPreview(ArtStoreError):
    status, code = 404, "NO_PREVIEW"


@dataclass(frozen=True)
class Preview:
    data: bytes
    content_type: str
    etag: str


@dataclass(frozen=True)
class Pending:
    """Not made yet (202)."""

    reason: str


TokenFor = Callable[[StorageElementRef], Awaitable[str]]


def check_size(state: QueryState, size: int) -> None:
    allowed = state.settings.preview_size_set()
    if size not in allowed:
        raise ValidationFailed(
            f"size must be one of {sorted(allowed)}",
            details={"fields": [{"field": "size", "message": f"not one of {sorted(allowed)}"}]},
        )


def _live(copy: dict[str, Any], now: datetime) -> bool:
    expires = copy.get("expires_at")
    return bool(copy["status"] == "active" and (expires is None or expires > now))


async def preview(
    state: QueryState, file_id: str, size: int, token_for: TokenFor
) -> Preview | Pending:
    check_size(state, size)
    try:
        async with state.engine.connect() as conn:
            copies = await repository.copies(conn, file_id)
            last = await repository.last_make(conn, file_id) if copies else None
    except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
        raise ServiceUnavailable(
            "the catalog cannot answer now", details={"reason": exc.__class__.__name__}
        ) from exc
    if not copies:
        raise NotFound(f"file {file_id} not found", details={"file_id": file_id})
    now = datetime.now(UTC)
    live = [c for c in copies if _live(c, now)]
    if not live:
        status = "deleted" if copies[0]["status"] == "deleted" else "expired"
        raise FileGone(
            f"file {file_id} is {status}", details={"file_id": file_id, "status": status}
        )
    speaker = live[0]
    if not is_previewable(speaker["content_type"]):
        raise NoPreview(
            f"no preview is made of {speaker['content_type'] or 'this type'}",
            details={"file_id": file_id},
        )
    holders = [c for c in live if size in (c["previews"] or ())]
    failures: list[str] = []
    client = StorageElementClient(state.http)
    for copy in holders:
        se = state.registry.get(copy["storage_element_id"])
        if se is None or se.status not in ("online", "degraded"):
            continue
        try:
            auth = {"Authorization": f"Bearer {await token_for(se)}"}
            got = await client.get_preview(se, file_id, size, auth)
        except ArtStoreError as exc:
            failures.append(f"{se.storage_id}: {describe(exc)}")
            continue
        if got is not None:
            data, content_type, etag = got
            return Preview(data, content_type, etag)
    if failures:
        raise ServiceUnavailable(
            "no storage element holding the preview answered", details={"failures": failures}
        )
    if last is not None and last.state == "failed":
        raise NoPreview(
            f"no preview can be made of this file: {last.error or 'failed'}",
            details={"file_id": file_id, "job_id": last.id},
        )
    if (
        last is not None
        and last.state == "succeeded"
        and (last.summary or {}).get("result") == "skipped"
    ):
        raise NoPreview(
            f"no preview is made of this file: {(last.summary or {}).get('reason', 'skipped')}",
            details={"file_id": file_id, "job_id": last.id},
        )
    return Pending("the preview is not made yet")
