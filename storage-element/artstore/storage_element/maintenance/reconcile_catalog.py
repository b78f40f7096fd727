"""reconcile's catalog part, without memory in the number of files (issue 19).

Per chunk of the walk: the rows of that chunk's file ids are read (one query) and the
missing or stale ones written as the attrs say. After the walk: this SE's rows, paged
by file id, whose path no longer holds that file's attr are deleted once ``find_attr``
confirms the file is not here (an upload may land meanwhile; quarantined rows are
kept: they record the quarantine). Refused rows (issue 11, few) are kept while the walk finds
their file. A catalog that fails stops the catalog part only: the files are still checked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from artstore.storage_element.catalog.errors import safe_reason
from artstore.storage_element.catalog.sync import CATALOG_ERRORS
from artstore.storage_element.maintenance.walk import attr_reader

if TYPE_CHECKING:
    from artstore.storage_element.backends.base import Backend
    from artstore.storage_element.maintenance.reconcile import Sound
    from artstore.storage_element.state import SEState

log = logging.getLogger("artstore.storage_element.reconcile")

SHOWN_REFUSED = 100  # refused ids listed in the report


_FILE_ID = b'"file_id":"'


def _named_by_attr(backend: Backend, rows: list[tuple[str, str]]) -> list[bool]:
    """Blocking, one hop for a page of rows: whether the attr at each row's path is
    that file's. The attr is canonical JSON with sorted keys: the first ``"file_id"``
    is its own (the fields sorted before it hold no "file_id" key). A wrong answer only keeps a
    row: a row is deleted only once ``find_attr`` does not find its file either."""
    read = attr_reader(backend)
    found = []
    for file_id, path in rows:
        try:
            raw = read(path)
        except (FileNotFoundError, NotADirectoryError, ValueError):
            found.append(False)  # gone (ValueError: not a path this SE could write)
            continue
        at = raw.find(_FILE_ID) + len(_FILE_ID)
        found.append(at >= len(_FILE_ID) and raw[at : at + len(file_id)] == file_id.encode())
    return found


class CatalogCheck:
    def __init__(self, node: SEState, page: int) -> None:
        self.node = node
        self.repo = node.catalog.repo
        self.page = page
        self.failed: str | None = None if self.repo is not None else "no catalog configured"
        self.inserted = self.updated = self.removed = self.refused = 0
        self.refused_ids: list[str] = []
        # Refused entries (issue 11) whose file the walk found sound: few, as they are.
        self.refused_seen: set[str] = set()

    def _fail(self, exc: BaseException) -> None:
        self.failed = f"catalog unreachable: {safe_reason(exc)}"
        log.warning("reconcile: %s", self.failed)

    async def chunk(self, good: Mapping[str, Sound]) -> None:
        """The rows of one chunk's sound attrs: inserted when missing, rewritten when
        their fingerprint differs or they are marked quarantined."""
        if self.failed is not None or self.repo is None or not good:
            return
        ledger = self.node.catalog.refused
        if len(ledger):
            self.refused_seen.update(fid for fid in good if fid in ledger)
        try:
            rows = await self.repo.fingerprints_of(list(good))
            missing = [s for fid, s in good.items() if fid not in rows]
            stale = [
                s
                for fid, s in good.items()
                if fid in rows and (rows[fid][0] != s.meta_checksum or rows[fid][1])
            ]
            # Whole attrs only for the rows written (decoded again: few, off the loop).
            attrs = await asyncio.to_thread(lambda: [s.full() for s in missing + stale])
            refused = await self.repo.force_upsert(attrs)  # rows refused for their data
        except CATALOG_ERRORS as exc:
            self._fail(exc)
            return
        self.inserted += sum(1 for s in missing if s.file_id not in refused)
        self.updated += sum(1 for s in stale if s.file_id not in refused)
        self.refused += len(refused)
        room = SHOWN_REFUSED - len(self.refused_ids)
        self.refused_ids.extend(sorted(refused)[: max(room, 0)])

    async def finish(self) -> None:
        """After the walk: rows whose file is gone, then the refused entries."""
        if self.failed is not None or self.repo is None:
            return
        try:
            await self._extra_rows()
            # Forget refused entries whose file is gone or quarantined.
            await self.node.catalog.refused.retain(self.refused_seen)
        except CATALOG_ERRORS as exc:
            self._fail(exc)

    async def _extra_rows(self) -> None:
        assert self.repo is not None
        after: str | None = None
        while page := await self.repo.rows_after(after, self.page):
            after = page[-1][0]
            # Keep marked rows (they record the quarantine).
            rows = [(fid, path) for fid, path, quarantined in page if not quarantined]
            exist = await asyncio.to_thread(_named_by_attr, self.node.backend, rows)
            for (fid, _), there in zip(rows, exist, strict=True):
                # Re-checked by id: an upload may have landed after the walk.
                if not there and await self.node.find_attr(fid) is None:
                    await self.repo.delete(fid)
                    self.removed += 1

    def report(self) -> dict[str, Any]:
        if self.failed is not None:
            return {"checked": False, "reason": self.failed}
        return {
            "checked": True,
            "inserted": self.inserted,
            "updated": self.updated,
            "removed": self.removed,
            "refused": self.refused,
            "refused_file_ids": sorted(self.refused_ids),
        }
