"""Edits and deletes of a file relayed to every live copy (docs/query.md, "Editing").

The catalog names the copies; each is changed on its own SE with a token bound to that
SE acting for the caller, so each SE enforces scopes, ownership and its mode exactly as
for a direct call. The copy that speaks for the file is asked first: when it refuses for
a client reason (nothing has changed anywhere yet) its answer is the answer. Once one
copy has changed, the others are asked together; any that fail are named in a 502 (the
ones that changed stay changed: the caller may repeat the request, which is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from artstore.common.errors import (
    ArtStoreError,
    FileGone,
    NotFound,
    ServiceUnavailable,
    UpstreamUnavailable,
)
from artstore.common.registry import StorageElementRef
from artstore.common.se_client import StorageElementClient, bearer
from artstore.contracts.files import Copy, FileMetadata
from artstore.query.search import repository as repo
from artstore.query.search.schemas import FileItem
from artstore.query.state import QueryState

log = logging.getLogger("artstore.query.edits")

# An SE's refusal that would be the same on every copy (the request, the caller, the
# SE's mode): passed on when nothing has changed yet. 404/410 from an SE mean the catalog
# was ahead of that copy: a failed copy, not the caller's mistake.
CLIENT_REFUSALS = frozenset({400, 401, 403, 409, 413, 422})

T = TypeVar("T")


@dataclass(frozen=True)
class Failure:
    storage_element_id: str
    status: int
    code: str
    message: str

    def as_detail(self) -> dict[str, Any]:
        return {
            "storage_element_id": self.storage_element_id,
            "status": self.status,
            "code": self.code,
            "message": self.message,
        }


async def _catalog_copies(state: QueryState, file_id: str) -> list[dict[str, Any]]:
    """Every copy the catalog knows (quarantined ones left out), the speaker first:
    404 unknown, 410 when none is active."""
    try:
        async with state.engine.connect() as conn:
            rows = await repo.copies_of(conn, [file_id])
    except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
        raise ServiceUnavailable(
            "the catalog cannot answer now", details={"reason": exc.__class__.__name__}
        ) from exc
    if not rows:
        raise NotFound(f"file {file_id} not found", details={"file_id": file_id})
    if not any(r["status"] == "active" for r in rows):
        status = "deleted" if rows[0]["status"] == "deleted" else "expired"
        raise FileGone(
            f"file {file_id} is {status}", details={"file_id": file_id, "status": status}
        )
    return rows


def _failure(storage_id: str, exc: ArtStoreError) -> Failure:
    return Failure(storage_id, exc.status, exc.code, exc.message)


async def _relay(
    state: QueryState,
    file_id: str,
    token: str,
    call: Callable[[StorageElementRef, dict[str, str]], Awaitable[T]],
    what: str,
) -> tuple[list[dict[str, Any]], list[tuple[str, T]]]:
    """``call`` on every active copy: the speaker first, then the others together.
    Returns the catalog rows and each changed copy's result; raises the first copy's
    client refusal, or a 502 naming every copy that failed."""
    rows = await _catalog_copies(state, file_id)
    targets = [str(r["storage_element_id"]) for r in rows if r["status"] == "active"]

    async def one(storage_id: str) -> T:
        se = state.registry.get(storage_id)
        if se is None:
            raise UpstreamUnavailable(
                f"storage element {storage_id} is not in the registry",
                details={"storage_element_id": storage_id},
            )
        bound = await state.se_tokens.for_caller(state.http, token, storage_id)
        return await call(se, bearer(bound))

    done: list[tuple[str, T]] = []
    failed: list[Failure] = []
    rest = list(targets)
    # Until one copy has changed, a refusal for a client reason is the answer (nothing
    # was changed); an SE that cannot be asked is skipped and named later.
    while rest and not done:
        storage_id = rest.pop(0)
        try:
            done.append((storage_id, await one(storage_id)))
        except ArtStoreError as exc:
            if exc.status in CLIENT_REFUSALS:
                raise
            failed.append(_failure(storage_id, exc))
    results = await asyncio.gather(*(one(s) for s in rest), return_exceptions=True)
    for storage_id, result in zip(rest, results, strict=True):
        if isinstance(result, ArtStoreError):
            failed.append(_failure(storage_id, result))
        elif isinstance(result, BaseException):
            raise result
        else:
            done.append((storage_id, result))
    await forget(state, file_id)
    if failed:
        log.warning("%s of %s failed on %d of %d copies", what, file_id, len(failed), len(targets))
        changed = [s for s, _ in done]
        raise UpstreamUnavailable(
            f"the {what} failed on {len(failed)} of {len(targets)} copies: "
            + ", ".join(f.storage_element_id for f in failed),
            details={
                "file_id": file_id,
                "failed": [f.as_detail() for f in failed],
                "changed": changed,
            },
        )
    return rows, done


async def forget(state: QueryState, file_id: str) -> None:
    """This module's own memory of the file: its cached metadata, a download's copies."""
    state.copy_reader.forget(file_id)
    await state.cache.drop(file_id)


async def edit(state: QueryState, file_id: str, token: str, changes: dict[str, Any]) -> FileItem:
    """PATCH on every active copy; the speaker's new metadata with the catalog's copies."""
    se_client = StorageElementClient(state.http)

    async def patch(se: StorageElementRef, auth: dict[str, str]) -> FileMetadata:
        return await se_client.patch_file(se, file_id, auth, changes)

    rows, done = await _relay(state, file_id, token, patch, "edit")
    copies = [
        Copy(storage_element_id=str(r["storage_element_id"]), status=r["status"]) for r in rows
    ]
    return FileItem(**done[0][1].model_dump(), copies=copies)


async def delete(state: QueryState, file_id: str, token: str) -> None:
    """DELETE (a tombstone) on every active copy."""
    se_client = StorageElementClient(state.http)

    async def remove(se: StorageElementRef, auth: dict[str, str]) -> int:
        return await se_client.delete_file(se, file_id, auth, accept=(204, 410))

    await _relay(state, file_id, token, remove, "delete")
