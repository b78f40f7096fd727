"""The FileStore: the one owner of every durable change of a file on this SE.

Each change follows its kind's row in ``changes.py``: journal ``begin`` -> fault points
-> backend -> journal outcome -> counters and index -> catalog row. Changes of one file
are serialised by a per-id lock held across the whole change, lookup included; writes
that need a mode hold the publish gate (shared) from their mode re-check to their
commit point. Nothing else in the SE writes files, attrs or file journal entries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from artstore.common.errors import AttrTooLarge, Conflict, ServiceUnavailable
from artstore.storage_element.attr.model import (
    ATTR_MAX_BYTES,
    MAX_PREVIEWS,
    Attr,
    BadAttr,
    PreviewRef,
    decode,
)
from artstore.storage_element.backends.base import Backend
from artstore.storage_element.backends.quarantine_entries import (
    QuarantinedEntry,
    file_id_in,
    info_document,
    read_info,
)
from artstore.storage_element.capacity import Capacity, Reservation
from artstore.storage_element.catalog.sync import CATALOG_ERRORS, CatalogSync
from artstore.storage_element.faults import FaultInjector
from artstore.storage_element.files.group_commit import GroupPublisher
from artstore.storage_element.files.index import FileIndex, entry_of
from artstore.storage_element.layout import preview_owner, preview_path
from artstore.storage_element.maintenance.state import MaintenanceState
from artstore.storage_element.modes.service import ModeService
from artstore.storage_element.settings import SESettings
from artstore.storage_element.store.changes import PREVIEW, RECLAIM, UPLOAD, ChangeKind
from artstore.storage_element.store.errors import Collision, Deleted, NoSpace, NotFound
from artstore.storage_element.store.locks import FileLocks
from artstore.storage_element.wal.journal import Journal

if TYPE_CHECKING:
    from artstore.storage_element.store.create import Creation

log = logging.getLogger("artstore.storage_element.store")

# Checks a change re-runs under the file's lock; False: nothing to do any more.
Recheck = Callable[[], Awaitable[bool]]


def check_attr_size(encoded: bytes) -> None:
    if len(encoded) > ATTR_MAX_BYTES:
        raise AttrTooLarge(
            f"metadata would take {len(encoded)} bytes; the limit is {ATTR_MAX_BYTES}",
            details={"attr_bytes": len(encoded), "limit": ATTR_MAX_BYTES},
        )


def path_key(storage_path: str) -> str:
    """The lock of a storage path (for checks that know a path, not an id)."""
    return f"path:{storage_path}"


@dataclass(frozen=True)
class Moved:
    """A copy moved into quarantine: its file id (when known) and where it went."""

    file_id: str | None
    dest: str


class FileStore:
    def __init__(
        self,
        settings: SESettings,
        backend: Backend,
        journal: Journal,
        faults: FaultInjector,
        capacity: Capacity,
        index: FileIndex,
        catalog: CatalogSync,
        modes: ModeService,
        maintenance: MaintenanceState,
        group: GroupPublisher | None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.journal = journal
        self.faults = faults
        self.capacity = capacity
        self.index = index
        self.catalog = catalog
        self.modes = modes
        self.maintenance = maintenance
        self.group = group
        self.locks = FileLocks()
        # Ids claimed by a create not yet published: held from lookup to publish.
        self.claims: set[str] = set()

    # -- reads ---------------------------------------------------------------------------
    def read_attr_sync(self, storage_path: str) -> Attr | None:
        """The attr at ``storage_path``; an undecodable one is quarantined (None)."""
        try:
            raw = self.backend.read_attr(storage_path)
        except FileNotFoundError:
            return None
        try:
            return decode(raw)
        except BadAttr as exc:
            blob = self.backend.blob_size(storage_path) or 0
            reason = f"bad_attr: {exc}"
            info = info_document(_id_in(raw), storage_path, reason, datetime.now(UTC))
            dest = self.backend.quarantine(storage_path, info)
            self.index.discard(storage_path)
            self.capacity.stored(-(blob + len(raw)), files=-1)
            self.maintenance.quarantined += 1
            log.error(
                "bad attr quarantined",
                extra={
                    "fields": {
                        "storage_path": storage_path,
                        "reason": str(exc),
                        "moved_to": str(dest),
                    }
                },
            )
            return None

    def _find_sync(self, file_id: str) -> Attr | None:
        for path in self.index.candidates(file_id):
            attr = self.read_attr_sync(path)
            if attr is not None and attr.file_id == file_id:
                return attr
        return None

    def find_sync(self, file_id: str) -> Attr | None:
        """:meth:`find`, blocking: for a caller that does more in the same thread hop
        (a download reads the attr and opens the blob in one, files/download.py)."""
        return self._find_sync(file_id)

    async def find(self, file_id: str) -> Attr | None:
        """The attr (the truth) of ``file_id`` on this SE, or None."""
        return await asyncio.to_thread(self._find_sync, file_id)

    async def get(self, file_id: str) -> Attr:
        attr = await self.find(file_id)
        if attr is None:
            raise NotFound(f"file {file_id} not found", details={"file_id": file_id})
        return attr

    async def taken(self, file_id: str) -> bool:
        """Whether ``file_id`` is stored here or being created (checked under its lock)."""
        async with self.locks.hold(file_id):
            return file_id in self.claims or await self.find(file_id) is not None

    # -- create --------------------------------------------------------------------------
    @asynccontextmanager
    async def create(
        self, file_id: str, storage_path: str, *, announced: int | None, lookup: bool = True
    ) -> AsyncIterator[Creation]:
        """A new file: claim the id (atomically with its lookup), reserve the announced
        bytes, journal the intent. The caller receives the body and publishes (the commit
        point); leaving the block any other way undoes everything, reservation and claim
        first, so neither can leak whatever the undo meets."""
        from artstore.storage_element.store.create import Creation

        async with self.locks.hold(file_id):
            # ``lookup`` False: a fresh random id, which no stored file can have.
            if file_id in self.claims or (lookup and await self.find(file_id) is not None):
                raise Collision(f"file {file_id} already exists", details={"file_id": file_id})
            self.claims.add(file_id)
        creation: Creation | None = None
        reservation = Reservation()
        try:
            if announced and not self.capacity.reserve(reservation, announced):
                raise NoSpace(
                    "not enough room for this file",
                    details={"available_bytes": self.capacity.available_bytes()},
                )
            txn = await self.journal.begin(
                UPLOAD.name, {"file_id": file_id, "storage_path": storage_path}, wait=False
            )
            creation = Creation(self, file_id, storage_path, txn, reservation)
            self.faults.point(UPLOAD.step("after_begin"))
            yield creation
            if not creation.published:
                raise RuntimeError("a create left its block unpublished")
        except BaseException:
            self.capacity.release(reservation)  # first: nothing below may keep it
            if creation is not None:
                await creation.undo()
            raise
        finally:
            self.capacity.release(reservation)
            self.claims.discard(file_id)

    # -- replace -------------------------------------------------------------------------
    async def replace(
        self,
        file_id: str,
        kind: ChangeKind,
        edit: Callable[[Attr], dict[str, Any] | None],
    ) -> Attr:
        """A new attr version (update, delete, expire): ``edit`` sees the current attr,
        under the lock, and returns the fields to change (None: nothing to do)."""
        async with self.locks.hold(file_id):
            old = await self.get(file_id)
            changes = edit(old)
            if changes is None:
                return old
            if old.status == "deleted":
                raise Deleted(f"file {file_id} is deleted", details={"file_id": file_id})
            new = Attr.model_validate(
                {
                    **old.model_dump(),
                    "version": old.version + 1,
                    "updated_at": datetime.now(UTC),
                    **changes,
                }
            ).sealed()
            encoded = new.encode()
            check_attr_size(encoded)
            # Preview sidecars the new version no longer names (a delete drops them):
            # removed after the commit point; recovery removes them if a crash intervenes.
            named = set(sidecars_of(new))
            drop = [p for p in sidecars_of(old) if p not in named]
            record: dict[str, Any] = {"drop": drop} if drop else {}
            freed = 0
            async with self.modes.admit(kind.operation):
                txn = await self.journal.begin(
                    kind.name,
                    {
                        "file_id": file_id,
                        "storage_path": new.storage_path,
                        "version": new.version,
                        **record,
                    },
                )
                self.faults.point(kind.step("after_begin"))
                try:
                    await asyncio.to_thread(
                        self.backend.replace_attr,
                        new.storage_path,
                        encoded,
                        self.faults.point,
                        kind.name,
                    )
                except BaseException:
                    await self.journal.abort(txn)
                    raise
                if drop:
                    freed = await asyncio.to_thread(self._sizes, drop)
                    try:
                        await asyncio.to_thread(self._remove_objects, drop)
                    except OSError as exc:  # left for reconcile: unnamed sidecars
                        log.warning("could not remove previews no longer named: %s", exc)
                        freed = 0
                await self.journal.commit(txn, owes_catalog=self.catalog.enabled)
                self.faults.point(kind.step("after_commit"))
            self.capacity.stored(len(encoded) - len(old.encode()) - freed)
            self.index.put(new.storage_path, entry_of(new))
            await self.catalog.record(txn, file_id, new)
        return new

    # -- previews (issue 16) ---------------------------------------------------------
    async def put_preview(self, file_id: str, ref: PreviewRef, data: bytes) -> tuple[Attr, bool]:
        """Store a preview sidecar and name it in the attr (a ``preview`` change).

        The sidecar goes under a new name (its digest is in it) before the attr names it
        (the commit point); the one it replaces is removed after. Never touches the
        blob. Returns the attr and whether anything changed (False: the same preview
        was there already)."""
        async with self.locks.hold(file_id):
            old = await self.get(file_id)
            if old.status == "deleted":
                raise Deleted(f"file {file_id} is deleted", details={"file_id": file_id})
            if old.preview(ref.size) == ref:
                # The same preview is named already: nothing to do when its sidecar is
                # whole; else these bytes (the very ones the attr names) restore it.
                return old, await asyncio.to_thread(self._restore_sidecar, old, ref, data)
            kept = [p for p in old.previews or () if p.size != ref.size]
            if len(kept) >= MAX_PREVIEWS:
                raise Conflict(
                    f"file {file_id} has {len(kept)} preview sizes, the most one may have;"
                    " delete one first",
                    details={"file_id": file_id, "limit": MAX_PREVIEWS},
                )
            previous = old.preview(ref.size)
            sidecar = preview_path(old.storage_path, ref.size, ref.format, ref.sha256)
            drop = [] if previous is None else [sidecar_of(old.storage_path, previous)]
            drop = [d for d in drop if d != sidecar]
            grows = len(data) - (previous.bytes if previous else 0)
            if grows > 0 and grows > self.capacity.available_bytes():
                raise NoSpace(
                    "not enough room for this preview",
                    details={"available_bytes": self.capacity.available_bytes()},
                )
            previews = sorted([*kept, ref], key=lambda p: p.size)
            new, txn = await self._new_version(
                old,
                PREVIEW,
                {"previews": previews},
                {"sidecar": sidecar, "drop": drop},
                before=lambda: self.backend.write_sidecar(sidecar, data),
                after=lambda: self._remove_objects(drop),
            )
            self.capacity.stored(grows)
            self.index.put(new.storage_path, entry_of(new))
        await self.catalog.record(txn, file_id, new)
        return new, True

    async def drop_preview(
        self, file_id: str, size: int, *, only_if: PreviewRef | None = None
    ) -> Attr | None:
        """Remove one preview: the attr stops naming it (the commit point), then its
        sidecar goes. None: there was no preview of that size (or, with ``only_if``,
        not that one any more)."""
        async with self.locks.hold(file_id):
            old = await self.get(file_id)
            found = old.preview(size)
            if found is None or (only_if is not None and found != only_if):
                return None
            if old.status == "deleted":
                raise Deleted(f"file {file_id} is deleted", details={"file_id": file_id})
            kept = [p for p in old.previews or () if p.size != size]
            drop = [sidecar_of(old.storage_path, found)]
            stored = await asyncio.to_thread(self.backend.blob_size, drop[0]) or 0
            new, txn = await self._new_version(
                old,
                PREVIEW,
                {"previews": kept or None},
                {"drop": drop},
                after=lambda: self._remove_objects(drop),
            )
            self.capacity.stored(-stored)
            self.index.put(new.storage_path, entry_of(new))
        await self.catalog.record(txn, file_id, new)
        return new

    async def remove_orphan_sidecar(self, path: str) -> bool:
        """Remove a preview sidecar that no attr names (reconcile), judged again under
        the locks of its copy: True when removed, False when it is named (or gone)."""
        owner = preview_owner(path)
        if owner is None:
            return False
        storage_path = owner[0]
        try:
            raw = await asyncio.to_thread(self.backend.read_attr, storage_path)
            file_id = _id_in(raw)
        except FileNotFoundError:
            file_id = None
        async with AsyncExitStack() as stack:
            if file_id is not None:
                await stack.enter_async_context(self.locks.hold(file_id))
            await stack.enter_async_context(self.locks.hold(path_key(storage_path)))
            return await asyncio.to_thread(self._remove_if_unnamed, path, storage_path)

    def _remove_if_unnamed(self, path: str, storage_path: str) -> bool:
        try:
            attr: Attr | None = decode(self.backend.read_attr(storage_path))
        except FileNotFoundError:
            attr = None
        except BadAttr:
            return False  # the copy is judged (quarantined) first; the next pass decides
        if attr is not None and path in sidecars_of(attr):
            return False
        size = self.backend.blob_size(path)
        if size is None:
            return False
        self.backend.remove_blob(path)
        self.capacity.stored(-size)
        log.warning("orphaned preview removed", extra={"fields": {"path": path}})
        return True

    async def _new_version(
        self,
        old: Attr,
        kind: ChangeKind,
        changes: dict[str, Any],
        record: dict[str, Any],
        *,
        before: Callable[[], None] | None = None,
        after: Callable[[], None] | None = None,
    ) -> tuple[Attr, str]:
        """Write the next attr version of ``old`` (lock held by the caller): journal,
        ``before`` (blocking, after ``after_begin``), the attr, ``after`` (blocking,
        after the commit point), journal commit. Counts the attr's growth."""
        new = Attr.model_validate(
            {
                **old.model_dump(),
                "version": old.version + 1,
                "updated_at": datetime.now(UTC),
                **changes,
            }
        ).sealed()
        encoded = new.encode()
        check_attr_size(encoded)
        async with self.modes.admit(kind.operation):
            txn = await self.journal.begin(
                kind.name,
                {
                    "file_id": old.file_id,
                    "storage_path": new.storage_path,
                    "version": new.version,
                    **record,
                },
            )
            self.faults.point(kind.step("after_begin"))
            try:
                if before is not None:
                    await asyncio.to_thread(before)
                    self.faults.point(kind.step("after_sidecar_write"))
                await asyncio.to_thread(
                    self.backend.replace_attr,
                    new.storage_path,
                    encoded,
                    self.faults.point,
                    kind.name,
                )
            except BaseException:
                sidecar = record.get("sidecar")
                if isinstance(sidecar, str):
                    await asyncio.to_thread(self._unnamed_away, new, sidecar)
                await self.journal.abort(txn)
                raise
            if after is not None:
                try:
                    await asyncio.to_thread(after)
                except OSError as exc:  # left for reconcile: an unnamed sidecar
                    log.warning("could not remove a replaced preview: %s", exc)
            self.faults.point(kind.step("after_old_removed"))
            await self.journal.commit(txn, owes_catalog=self.catalog.enabled)
            self.faults.point(kind.step("after_commit"))
        self.capacity.stored(len(encoded) - len(old.encode()))
        return new, txn

    def _unnamed_away(self, new: Attr, sidecar: str) -> None:
        """After a failed preview write: remove its sidecar unless the attr on disk is
        the new version (which names it)."""
        try:
            current = decode(self.backend.read_attr(new.storage_path))
        except (FileNotFoundError, BadAttr):
            current = None
        if current is None or current.version != new.version:
            self.backend.remove_blob(sidecar)

    def _restore_sidecar(self, attr: Attr, ref: PreviewRef, data: bytes) -> bool:
        path = sidecar_of(attr.storage_path, ref)
        if self.backend.blob_size(path) == ref.bytes:
            return False
        before = self.backend.blob_size(path) or 0
        self.backend.write_sidecar(path, data)
        self.capacity.stored(len(data) - before)
        log.warning("preview sidecar restored", extra={"fields": {"path": path}})
        return True

    def _sizes(self, paths: list[str]) -> int:
        return sum(self.backend.blob_size(p) or 0 for p in paths)

    def _remove_objects(self, paths: list[str]) -> None:
        for path in paths:
            self.backend.remove_blob(path)

    # -- reclaim -------------------------------------------------------------------------
    async def reclaim(
        self, file_id: str, storage_path: str, still: Callable[[Attr], bool]
    ) -> int | None:
        """Remove a copy for good: attr (the commit point), then blob, then its row.
        ``still`` re-judges the attr read under the lock; None: it changed, kept."""
        async with self.locks.hold(file_id), self.locks.hold(path_key(storage_path)):
            attr = await asyncio.to_thread(self.read_attr_sync, storage_path)
            if attr is None or attr.file_id != file_id or not still(attr):
                return None
            blob = await asyncio.to_thread(self.backend.blob_size, storage_path) or 0
            raw = len(attr.encode())
            sidecars = sidecars_of(attr)
            blob += await asyncio.to_thread(self._sizes, sidecars)
            txn = await self.journal.begin(
                RECLAIM.name,
                {"file_id": file_id, "storage_path": storage_path, "sidecars": sidecars},
            )
            self.faults.point(RECLAIM.step("after_begin"))
            await asyncio.to_thread(self.backend.remove_attr, storage_path)
            self.faults.point(RECLAIM.step("after_attr_remove"))
            await asyncio.to_thread(self._remove_objects, [storage_path, *sidecars])
            self.faults.point(RECLAIM.step("after_blob_remove"))
            await self.journal.commit(txn, owes_catalog=self.catalog.enabled)
            self.faults.point(RECLAIM.step("after_commit"))
            self.index.discard(storage_path)
            self.capacity.stored(-(blob + raw), files=-1)
        await self.catalog.record(txn, file_id, None)
        return blob + raw

    # -- quarantine ----------------------------------------------------------------------
    async def quarantine(
        self,
        storage_path: str,
        file_id: str | None,
        reason: str,
        still_bad: Recheck | None = None,
    ) -> Moved | None:
        """Move a damaged copy aside under its locks; ``still_bad`` re-judges it there
        (the judgement may come from a snapshot). None: it was fine after all."""
        async with AsyncExitStack() as stack:
            if file_id is not None:
                await stack.enter_async_context(self.locks.hold(file_id))
            await stack.enter_async_context(self.locks.hold(path_key(storage_path)))
            if still_bad is not None and not await still_bad():
                log.info(
                    "quarantine skipped: the copy changed since it was judged",
                    extra={"fields": {"storage_path": storage_path, "reason": reason}},
                )
                return None
            return await self.quarantine_held(storage_path, file_id, reason)

    async def quarantine_held(self, storage_path: str, file_id: str | None, reason: str) -> Moved:
        """Quarantine with the file's lock already held by the caller."""
        size, had_attr, attr_id = await asyncio.to_thread(self._stored, storage_path)
        # Recorded with the entry: its reason outlives the process and the catalog row.
        info = info_document(file_id or attr_id, storage_path, reason, datetime.now(UTC))
        dest = await asyncio.to_thread(self.backend.quarantine, storage_path, info)
        self.index.discard(storage_path)
        self.capacity.stored(-size, files=-1 if had_attr else 0)
        self.maintenance.quarantined += 1
        log.error(
            "copy quarantined",
            extra={
                "fields": {
                    "storage_path": storage_path,
                    "file_id": file_id,
                    "reason": reason,
                    "moved_to": dest,
                }
            },
        )
        repo = self.catalog.repo
        if repo is not None:
            try:
                known = await asyncio.wait_for(
                    repo.mark_quarantined(storage_path, reason), self.settings.catalog_timeout
                )
                file_id = file_id or known
            except CATALOG_ERRORS as exc:  # the row stays as it was; reconcile reports it
                log.warning("could not mark %s quarantined in the catalog: %s", storage_path, exc)
        return Moved(file_id, dest)

    def _stored(self, storage_path: str) -> tuple[int, bool, str | None]:
        """Bytes the copy takes, whether it has an attr, and the file id it names."""
        blob = self.backend.blob_size(storage_path) or 0
        try:
            raw = self.backend.read_attr(storage_path)
        except FileNotFoundError:
            return blob, False, None
        return blob + len(raw), True, _id_in(raw)

    async def purge_quarantined(self, entry: str) -> tuple[QuarantinedEntry, int]:
        """Remove a quarantined entry for good: its catalog row (the one still marked
        quarantined for that copy), then its bytes. In that order, so that a failure
        leaves the entry listed and a purge can be asked again (each step is
        idempotent); no journal record is needed, since nothing served changes."""
        async with self.locks.hold(f"quarantine:{entry}"):
            found = await asyncio.to_thread(self.backend.quarantined_entry, entry)
            if found is None:
                raise NotFound("no such quarantined item")
            repo = self.catalog.repo
            if repo is not None:
                try:
                    await asyncio.wait_for(
                        repo.delete_quarantined(found.storage_path),
                        self.settings.catalog_timeout,
                    )
                except CATALOG_ERRORS as exc:
                    raise ServiceUnavailable(
                        "the catalog cannot be reached; nothing was purged"
                    ) from exc
            freed = await asyncio.to_thread(self.backend.purge_quarantined, entry)
        log.warning(
            "quarantined copy purged",
            extra={"fields": {"entry": entry, "bytes": freed}},
        )
        return found, freed


def sidecar_of(storage_path: str, ref: PreviewRef) -> str:
    return preview_path(storage_path, ref.size, ref.format, ref.sha256)


def sidecars_of(attr: Attr) -> list[str]:
    """The preview sidecars ``attr`` names."""
    return [sidecar_of(attr.storage_path, p) for p in attr.previews or ()]


def _id_in(raw: bytes) -> str | None:
    """The file id an attr names, read leniently: a damaged attr may still say it."""
    return file_id_in(read_info(raw))
