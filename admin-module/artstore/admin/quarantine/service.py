"""The quarantine across SEs (architecture §5.5, §10): list with each item's state,
restore (a ``repair.file`` job) and purge (the SE's DELETE); both audited.

Every call to an SE carries the caller's token bound to that SE (``bound_for``), as
every admin→SE call does; an SE that cannot be asked is reported, never a 5xx of the
listing."""

from __future__ import annotations

import logging
import re

from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit.service import Actor, Entry, record, record_alone
from artstore.admin.auth.exchange import bound_for
from artstore.admin.quarantine import repository as repo
from artstore.admin.quarantine.schemas import (
    AdminQuarantineItem,
    ItemState,
    Purged,
    QuarantineListing,
    RestoreAccepted,
    UnreachableSE,
)
from artstore.admin.state import AdminState
from artstore.common.auth import Principal
from artstore.common.errors import (
    ArtStoreError,
    Conflict,
    NotFound,
    UpstreamUnavailable,
    ValidationFailed,
)
from artstore.common.pagination import Page, PageParams
from artstore.common.se_client import StorageElementClient, Unreachable, bearer
from artstore.contracts.jobs import REPAIR_FILE
from artstore.contracts.quarantine import ITEM_MAX_CHARS, ITEM_PATTERN, QuarantineItem
from artstore.jobs.defer import defer_job

log = logging.getLogger("artstore.admin.quarantine")
_ITEM = re.compile(ITEM_PATTERN)


def check_item(item: str) -> None:
    """The SE checks an item fully; here only its form, so that nothing odd is sent."""
    if not (0 < len(item) <= ITEM_MAX_CHARS) or _ITEM.match(item) is None:
        raise ValidationFailed("malformed quarantine item id", details={"item": item[:100]})


def _why(exc: ArtStoreError) -> str:
    return exc.reason if isinstance(exc, Unreachable) else f"{exc.code}: {exc.message}"


async def _se(session: AsyncSession, storage_id: str) -> tuple[str, str]:
    async with session.begin():
        row = await repo.storage_element(session, storage_id)
    if row is None:
        raise NotFound(
            f"storage element {storage_id} not found", details={"storage_id": storage_id}
        )
    return str(row["storage_id"]), str(row["url"])


def state_of(
    storage_id: str, item: QuarantineItem, holders: set[str], pending: int | None
) -> ItemState:
    if item.file_id is None:
        return "unrecoverable"  # nothing says which file it was: purge it
    if storage_id in holders:
        return "restored"
    if not holders:
        return "unrecoverable"
    return "restoring" if pending is not None else "damaged"


async def listing(
    session: AsyncSession,
    state: AdminState,
    principal: Principal,
    page: PageParams,
    storage_element_id: str | None,
) -> QuarantineListing:
    if storage_element_id is not None:
        targets = [await _se(session, storage_element_id)]
    else:
        async with session.begin():
            targets = [(r["storage_id"], r["url"]) for r in await repo.storage_elements(session)]
    client = StorageElementClient(state.http)
    found: list[tuple[str, QuarantineItem]] = []
    unreachable: list[UnreachableSE] = []
    total = 0
    for storage_id, url in targets:
        # This SE's items start at ``total`` in the merged order.
        wanted = page.limit - len(found)
        token = await bound_for(state.settings, state.keys, principal, storage_id)
        try:
            got = await client.quarantine(
                url, bearer(token), limit=max(wanted, 1), offset=max(0, page.offset - total)
            )
        except ArtStoreError as exc:
            unreachable.append(UnreachableSE(storage_element_id=storage_id, reason=_why(exc)))
            continue
        if wanted > 0:
            found += [(storage_id, i) for i in got.items[:wanted]]
        total += got.total
    ids = sorted({i.file_id for _, i in found if i.file_id is not None})
    async with session.begin():
        holders = await repo.healthy_copies(session, ids)
        pending = await repo.pending_repairs(session, ids)
    items = []
    for storage_id, i in found:
        held = holders.get(i.file_id or "", set())
        job = pending.get(i.file_id or "")
        items.append(
            AdminQuarantineItem.of(
                storage_id, i, state_of(storage_id, i, held, job), len(held), job
            )
        )
    return QuarantineListing(**dict(Page.of(items, total, page)), unreachable=unreachable)


async def restore(
    session: AsyncSession, state: AdminState, principal: Principal, storage_id: str, item: str
) -> RestoreAccepted:
    """Queue a repair of the item's file that writes the new copy to that SE first."""
    check_item(item)
    storage_id, url = await _se(session, storage_id)
    token = await bound_for(state.settings, state.keys, principal, storage_id)
    got = await StorageElementClient(state.http).quarantine_item(url, item, bearer(token))
    actor = Actor.of(principal)
    entry = Entry("quarantine.restore", "quarantine_item", f"{storage_id}/{item}")
    entry.details = {"file_id": got.file_id, "path": got.path}
    if got.file_id is None:
        await _refused(session, actor, entry, "the item has no file id: nothing to restore")
    assert got.file_id is not None
    async with session.begin():
        holders = (await repo.healthy_copies(session, [got.file_id])).get(got.file_id, set())
    if not holders:
        await _refused(session, actor, entry, "no healthy copy of the file exists anywhere")
    if state.jobs_queue is None:
        raise UpstreamUnavailable("the job queue is not open")
    job_id = await defer_job(
        state.jobs_queue,
        state.engine,
        REPAIR_FILE,
        args={"file_id": got.file_id, "prefer_storage_element_id": storage_id},
        storage_element_id=storage_id,
        target=got.file_id,
        requested_by=principal.sub,
        dedupe=got.file_id,  # the lock repair.scan takes: one waiting repair per file
    )
    already = job_id is None
    if job_id is None:
        async with session.begin():
            job_id = (await repo.pending_repairs(session, [got.file_id])).get(got.file_id)
        if job_id is None:  # it started meanwhile and ended: one more is fine
            raise Conflict("a repair of this file just ran; ask again", details={})
    entry.details.update(job_id=job_id, already_queued=already)
    async with session.begin():
        await record(session, actor, entry)
    return RestoreAccepted(job_id=job_id, file_id=got.file_id, already_queued=already)


async def _refused(session: AsyncSession, actor: Actor, entry: Entry, why: str) -> None:
    entry.outcome = "failure"
    entry.details["reason"] = why
    await record_alone(session, actor, entry)
    raise Conflict(why, details={"file_id": entry.details.get("file_id")})


async def purge(
    session: AsyncSession,
    state: AdminState,
    principal: Principal,
    storage_id: str,
    item: str,
    confirm: str | None,
) -> Purged:
    check_item(item)
    if confirm != item:
        raise ValidationFailed(
            'a purge removes the bytes for good: send {"confirm": "<item>"}',
            details={"field": "confirm"},
        )
    storage_id, url = await _se(session, storage_id)
    token = await bound_for(state.settings, state.keys, principal, storage_id)
    actor = Actor.of(principal)
    entry = Entry("quarantine.purge", "quarantine_item", f"{storage_id}/{item}")
    try:
        answer = await StorageElementClient(state.http).purge_quarantined(url, item, bearer(token))
    except ArtStoreError as exc:
        entry.outcome = "failure"
        entry.details = {"error": exc.code}
        await record_alone(session, actor, entry)
        raise
    path, freed = answer.get("path"), answer.get("bytes_freed")
    done = Purged(
        storage_element_id=storage_id,
        item=item,
        path=path if isinstance(path, str) else "",
        bytes_freed=freed if isinstance(freed, int) else 0,
    )
    entry.details = {"path": done.path, "bytes_freed": done.bytes_freed}
    await record_alone(session, actor, entry)
    return done
