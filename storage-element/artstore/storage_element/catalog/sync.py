"""Keeps this SE's catalog rows in step with its attrs, owing updates while PG is away.

Each committed change is upserted before the answer, within ``catalog_timeout``;
changes committed at the same time are written together (one statement for the group,
the next group forming meanwhile), as the journal groups its fsyncs. When that fails
the change stays open in the journal (it survives a restart) and is replayed in order
by a background task: a replay reads the *current* attr, so it is idempotent and a
later change simply supersedes an earlier owed one.

Only an outage is owed. A row PostgreSQL refuses for its data (``errors.is_data_error``)
would be refused on every retry and block the queue behind it forever (issue 11): it
is recorded in ``refused`` instead, its transaction closed, and the queue moves on. A
group refused that way is written again row by row, so only its bad rows are refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import Enum
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from artstore.storage_element.attr.model import Attr
from artstore.storage_element.catalog.errors import is_data_error, safe_reason
from artstore.storage_element.catalog.refused import RefusedFiles
from artstore.storage_element.catalog.repository import CatalogRepository
from artstore.storage_element.wal.journal import Journal

log = logging.getLogger("artstore.storage_element.catalog")

AttrLoader = Callable[[str], Awaitable[Attr | None]]

# What a catalog call may raise when PostgreSQL is away or refuses (other modules catch
# these around their own catalog calls). UnicodeError: text the driver cannot encode.
CATALOG_ERRORS = (SQLAlchemyError, OSError, TimeoutError, ConnectionError, UnicodeError)


class Outcome(Enum):
    LANDED = "landed"
    REFUSED = "refused"  # for its data: recorded, not owed
    OWED = "owed"  # an outage: replayed later, in order


class CatalogSync:
    def __init__(
        self,
        repo: CatalogRepository | None,
        journal: Journal,
        timeout: float,
        retry_interval: float,
        refused_path: Path | None = None,
    ) -> None:
        self.repo = repo
        self.journal = journal
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.owed: dict[str, str] = {}  # txn -> file_id, in commit order
        self.refused = RefusedFiles(refused_path)
        if repo is not None:
            repo.refused = self.refused  # reconcile's force_upsert records there too
        self.reachable = repo is not None
        self.last_error: str | None = None if repo is not None else "no DATABASE_URL"
        self._replay_lock = asyncio.Lock()
        self._group: list[tuple[str, Attr, asyncio.Future[bool]]] = []
        self._group_writer: asyncio.Task[None] | None = None
        self.max_group = 500

    @property
    def enabled(self) -> bool:
        return self.repo is not None

    def owes(self, file_id: str) -> bool:
        """True when the catalog cannot answer for ``file_id`` (its update is owed, or
        its row was refused): read the attr instead."""
        return file_id in self.refused or file_id in self.owed.values()

    async def record(self, txn: str, file_id: str, attr: Attr | None) -> bool:
        """Mirror a committed ``txn`` (``attr`` None: the file is gone, so is its row).
        On an outage the update is owed; a row refused for its data is recorded in
        ``refused``. True when the row landed."""
        if self.repo is None:
            return False
        if self.owed:
            # Keep order: an older owed update for any file must not land after this one.
            self._owe_later(txn, file_id)
            return False
        if attr is not None:
            return await self._join_group(txn, attr)
        outcome = await self._write_one(file_id, attr)
        if outcome is Outcome.OWED:
            self.owed[txn] = file_id
            return False
        await self.journal.catalog_done(txn)
        return outcome is Outcome.LANDED

    def _owe_later(self, txn: str, file_id: str) -> None:
        self.owed[txn] = file_id
        asyncio.get_running_loop().create_task(self._replay_quietly())

    async def _join_group(self, txn: str, attr: Attr) -> bool:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._group.append((txn, attr, fut))
        if self._group_writer is None or self._group_writer.done():
            self._group_writer = loop.create_task(self._write_groups())
        return await asyncio.shield(fut)

    async def _write_groups(self) -> None:
        while self._group:
            group, self._group = self._group[: self.max_group], self._group[self.max_group :]
            behind = bool(self.owed)  # a newer update must queue behind owed ones
            try:
                outcomes = await self._write_group(group, behind)
            except BaseException as exc:  # nobody may wait forever
                for _, _, fut in group:
                    if not fut.done():
                        fut.set_exception(exc)
                raise
            for txn, attr, fut in group:
                outcome = outcomes[attr.file_id]
                if outcome is Outcome.OWED:
                    self.owed[txn] = attr.file_id
                else:
                    await self.journal.catalog_done(txn)
                if not fut.done():
                    fut.set_result(outcome is Outcome.LANDED)
            if behind:
                asyncio.get_running_loop().create_task(self._replay_quietly())

    async def _write_group(
        self, group: list[tuple[str, Attr, asyncio.Future[bool]]], behind: bool
    ) -> dict[str, Outcome]:
        """One statement for the group; row by row when it is refused for its data."""
        assert self.repo is not None
        # One row per file: the newest version (an upsert may not touch a row twice).
        newest: dict[str, Attr] = {}
        for _, attr, _ in group:
            held = newest.get(attr.file_id)
            if held is None or attr.version >= held.version:
                newest[attr.file_id] = attr
        if behind:  # replayed in order with the owed updates
            return dict.fromkeys(newest, Outcome.OWED)
        try:
            await asyncio.wait_for(self.repo.upsert(list(newest.values())), self.timeout)
        except Exception as exc:
            if not is_data_error(exc):
                self._failed(exc)
                return dict.fromkeys(newest, Outcome.OWED)
        else:
            self.reachable = True
            if len(self.refused):
                await self.refused.settle(landed=newest)
            return dict.fromkeys(newest, Outcome.LANDED)
        outcomes: dict[str, Outcome] = {}
        outage = False
        for file_id, attr in newest.items():
            # After an outage the rest is owed too, in order (no point trying each).
            outcome = Outcome.OWED if outage else await self._write_one(file_id, attr)
            outage = outcome is Outcome.OWED
            outcomes[file_id] = outcome
        return outcomes

    async def _write_one(self, file_id: str, attr: Attr | None) -> Outcome:
        """Write one row (or remove it); classify a failure."""
        try:
            await asyncio.wait_for(self._apply(file_id, attr), self.timeout)
        except Exception as exc:
            if not is_data_error(exc):
                self._failed(exc)
                return Outcome.OWED
            await self.refused.settle(refused={file_id: safe_reason(exc)})
            return Outcome.REFUSED
        self.reachable = True
        if file_id in self.refused:
            await self.refused.settle(landed=[file_id])
        return Outcome.LANDED

    def _failed(self, exc: BaseException) -> None:
        reason = safe_reason(exc)
        if self.reachable:
            log.warning("catalog unreachable, owing updates: %s", reason)
        self.reachable = False
        self.last_error = reason

    async def _replay_quietly(self) -> None:
        try:
            await self.replay()
        except Exception:
            log.exception("catalog replay failed")

    async def replay(self, load: AttrLoader | None = None) -> int:
        """Write owed updates in order; stops at the first outage (a row refused for its
        data is recorded and passed). Returns how many were settled."""
        if self.repo is None or not self.owed:
            return 0
        await self.refused.load()
        load = load or self._loader
        done = 0
        async with self._replay_lock:
            for txn, file_id in list(self.owed.items()):
                attr = await load(file_id)
                if await self._write_one(file_id, attr) is Outcome.OWED:
                    return done
                self.owed.pop(txn, None)
                await self.journal.catalog_done(txn)
                done += 1
        self.reachable = True
        return done

    async def _apply(self, file_id: str, attr: Attr | None) -> None:
        assert self.repo is not None
        if attr is None:
            await self.repo.delete(file_id)
        else:
            await self.repo.upsert([attr])

    _loader: AttrLoader

    def set_loader(self, loader: AttrLoader) -> None:
        self._loader = loader

    async def run_forever(self) -> None:
        await self.refused.load()
        while True:
            await asyncio.sleep(self.retry_interval)
            if self.repo is None:
                continue
            if self.owed:
                await self._replay_quietly()
            elif not self.reachable:
                try:
                    await asyncio.wait_for(self.repo.ping(), self.timeout)
                    self.reachable = True
                except Exception as exc:
                    self._failed(exc)
