"""Keeps this SE's catalog rows in step with its attrs, owing updates while PG is away.

Each committed change is upserted before the answer, within ``catalog_timeout``;
changes committed at the same time are written together (one statement for the group,
the next group forming meanwhile), as the journal groups its fsyncs. When that fails
the change stays open in the journal (it survives a restart) and is replayed in order
by a background task: a replay reads the *current* attr, so it is idempotent and a
later change simply supersedes an earlier owed one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from artstore.storage_element.attr.model import Attr
from artstore.storage_element.catalog.repository import CatalogRepository
from artstore.storage_element.wal.journal import Journal

log = logging.getLogger("artstore.storage_element.catalog")

AttrLoader = Callable[[str], Awaitable[Attr | None]]

CATALOG_ERRORS = (SQLAlchemyError, OSError, TimeoutError, ConnectionError)


class _OwedFirst(Exception):
    """Updates are owed already: a newer one must queue behind them, not overtake."""


class CatalogSync:
    def __init__(
        self,
        repo: CatalogRepository | None,
        journal: Journal,
        timeout: float,
        retry_interval: float,
    ) -> None:
        self.repo = repo
        self.journal = journal
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.owed: dict[str, str] = {}  # txn -> file_id, in commit order
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
        return file_id in self.owed.values()

    async def record(self, txn: str, file_id: str, attr: Attr | None) -> bool:
        """Mirror a committed ``txn`` (``attr`` None: the file is gone, so is its row).
        On failure the update is owed."""
        if self.repo is None:
            return False
        if self.owed:
            # Keep order: an older owed update for any file must not land after this one.
            self._owe_later(txn, file_id)
            return False
        if attr is not None:
            return await self._join_group(txn, attr)
        try:
            await asyncio.wait_for(self._apply(file_id, attr), self.timeout)
        except CATALOG_ERRORS as exc:
            self._failed(exc)
            self.owed[txn] = file_id
            return False
        self.reachable = True
        await self.journal.catalog_done(txn)
        return True

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
        assert self.repo is not None
        while self._group:
            group, self._group = self._group[: self.max_group], self._group[self.max_group :]
            try:
                if self.owed:
                    raise _OwedFirst
                # One row per file: the newest version (an upsert may not touch a row twice).
                newest: dict[str, Attr] = {}
                for _, attr, _ in group:
                    held = newest.get(attr.file_id)
                    if held is None or attr.version >= held.version:
                        newest[attr.file_id] = attr
                await asyncio.wait_for(self.repo.upsert(list(newest.values())), self.timeout)
            except (*CATALOG_ERRORS, _OwedFirst) as exc:
                if not isinstance(exc, _OwedFirst):
                    self._failed(exc)
                for txn, attr, fut in group:
                    self.owed[txn] = attr.file_id
                    if not fut.done():
                        fut.set_result(False)
                if isinstance(exc, _OwedFirst):
                    asyncio.get_running_loop().create_task(self._replay_quietly())
                continue
            except BaseException as exc:  # nobody may wait forever
                for _, _, fut in group:
                    if not fut.done():
                        fut.set_exception(exc)
                raise
            self.reachable = True
            for txn, _, fut in group:
                await self.journal.catalog_done(txn)
                if not fut.done():
                    fut.set_result(True)

    def _failed(self, exc: BaseException) -> None:
        if self.reachable:
            log.warning("catalog unreachable, owing updates: %s", exc)
        self.reachable = False
        self.last_error = str(exc) or type(exc).__name__

    async def _replay_quietly(self) -> None:
        try:
            await self.replay()
        except Exception:
            log.exception("catalog replay failed")

    async def replay(self, load: AttrLoader | None = None) -> int:
        """Write owed updates in order; stops at the first failure. Returns how many landed."""
        if self.repo is None or not self.owed:
            return 0
        load = load or self._loader
        done = 0
        async with self._replay_lock:
            for txn, file_id in list(self.owed.items()):
                attr = await load(file_id)
                try:
                    await asyncio.wait_for(self._apply(file_id, attr), self.timeout)
                except CATALOG_ERRORS as exc:
                    self._failed(exc)
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
                except CATALOG_ERRORS as exc:
                    self._failed(exc)
