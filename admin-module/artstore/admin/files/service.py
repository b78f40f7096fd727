"""Files view over the catalog, and delete-everywhere through the SEs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit.service import Actor, Entry, record_alone
from artstore.admin.events import FILES_CHANNEL, Events
from artstore.admin.files import repository as repo
from artstore.admin.files.repository import FileFilters
from artstore.admin.storage_elements import client
from artstore.admin.storage_elements import repository as se_repo
from artstore.common.errors import (
    ArtStoreError,
    FileGone,
    ModeNotAllowed,
    NotFound,
    UpstreamUnavailable,
)
from artstore.contracts.events import FileChanged
from artstore.contracts.files import FileMetadata


def _group(copies: list[FileMetadata]) -> dict[str, list[FileMetadata]]:
    out: dict[str, list[FileMetadata]] = {}
    for c in copies:
        out.setdefault(c.file_id, []).append(c)
    return out


async def page(
    session: AsyncSession, filters: FileFilters, limit: int, offset: int
) -> tuple[list[tuple[FileMetadata, list[FileMetadata]]], int]:
    async with session.begin():
        rows, total = await repo.page(session, filters, limit, offset)
        grouped = _group(await repo.copies(session, [r.file_id for r in rows]))
    return [(r, grouped.get(r.file_id, [])) for r in rows], total


async def get(session: AsyncSession, file_id: str) -> tuple[FileMetadata, list[FileMetadata]]:
    async with session.begin():
        copies = await repo.copies(session, [file_id])
    if not copies:
        raise NotFound(f"file {file_id} not found", details={"file_id": file_id})
    return copies[0], copies  # copies come in preference order: the first speaks


async def _audit_failure(
    session: AsyncSession, actor: Actor, file_id: str, exc: ArtStoreError
) -> None:
    details = {"code": exc.code, **(exc.details or {})}
    await record_alone(
        session, actor, Entry("file.delete", "file", file_id, "failure", details=details)
    )


async def delete_everywhere(
    session: AsyncSession,
    http: httpx.AsyncClient,
    events: Events,
    actor: Actor,
    token_for: Callable[[str], Awaitable[str]],
    file_id: str,
) -> None:
    """Tombstone every live copy through its SE, or none when any SE forbids it.
    ``token_for(storage_id)``: the caller's token bound to that SE (architecture §10)."""
    _, copies = await get(session, file_id)
    live = sorted({c.storage_element_id for c in copies if c.status != "deleted"})
    if not live:
        raise FileGone(f"file {file_id} is already deleted", details={"file_id": file_id})
    try:
        async with session.begin():
            registry = await se_repo.by_ids(session, live)
        unknown = [s for s in live if s not in registry]
        if unknown:
            raise UpstreamUnavailable(
                "a copy is on a storage element the registry does not know",
                details={"storage_element_ids": unknown},
            )
        # Ask each SE for its mode now (the registry may be a poll behind): all or none.
        infos = await asyncio.gather(*(client.info(http, registry[s]["url"]) for s in live))
        blocked = [
            {"storage_element_id": s, "mode": i.get("mode")}
            for s, i in zip(live, infos, strict=True)
            if "delete" not in (i.get("allowed_operations") or [])
        ]
        if blocked:
            raise ModeNotAllowed(
                "a copy is on a storage element whose mode forbids delete; nothing was deleted",
                details={"blocked": blocked},
            )
        tokens = [await token_for(s) for s in live]
        answers = await asyncio.gather(
            *(
                client.delete_copy(http, registry[s]["url"], file_id, token)
                for s, token in zip(live, tokens, strict=True)
            ),
            return_exceptions=True,
        )
        failed: list[dict[str, object]] = []
        for s, answer in zip(live, answers, strict=True):
            # 410: already a tombstone there; 404: the catalog was ahead of the SE.
            if isinstance(answer, BaseException):
                failed.append({"storage_element_id": s, "error": str(answer)})
            elif answer not in (204, 404, 410):
                failed.append({"storage_element_id": s, "status": answer})
        if failed:
            done = [s for s in live if s not in {f["storage_element_id"] for f in failed}]
            raise UpstreamUnavailable(
                "some copies could not be deleted; retry to finish",
                details={"deleted": done, "failed": failed},
            )
    except ArtStoreError as exc:
        await _audit_failure(session, actor, file_id, exc)
        raise
    await record_alone(
        session, actor, Entry("file.delete", "file", file_id, details={"copies": live})
    )
    await events.publish(FILES_CHANNEL, FileChanged(event="deleted", file_id=file_id).model_dump())
