"""What placement knows of each writable SE's room and mode, without asking it per upload.

Reading every candidate's ``/info`` before every upload cost about a third of the
ingester's CPU (and the SEs' work answering) on small files. Instead:

- each writable SE's ``/info`` is read in the background every
  ``IG_CAPACITY_REFRESH_INTERVAL`` seconds, and soon after an SE refused a file for room
  or mode or could not be reached (at most once per ``_MIN_GAP``);
- until an SE's ``/info`` was read, the registry's figures are used (the admin polls
  the same ``/info``);
- the bytes placed on an SE since its last ``/info`` are subtracted from what it said,
  so ``most_free`` spreads a burst of files and ``fill_first`` sees an SE fill up
  between two reads;
- an SE that answered 507 counts as having no room, and one that could not be reached
  is passed over, until its next ``/info`` says otherwise.

The figures are only a guide: the SE has the last word (507 for room, 409 for mode), and
an upload it refused that way goes to the next SE (see ``replication/fanout.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import httpx

from artstore.common.errors import UpstreamUnavailable
from artstore.common.registry import KIND_MODE, StorageElementRef, StorageRegistry
from artstore.common.se_client import StorageElementClient
from artstore.contracts.se import SEInfo

log = logging.getLogger("artstore.ingester.placement")

_MODES = frozenset(KIND_MODE.values())
_MIN_GAP = 0.25  # seconds between two refreshes asked for by a refusal
_INFO_TIMEOUT = 3.0


@dataclass
class Seen:
    """One SE as placement sees it: its last ``/info`` (or the registry's figures)."""

    mode: str
    takes_uploads: bool  # status not maintenance and "upload" allowed
    available: int  # bytes, as last read, minus what was placed since
    reachable: bool = True
    read_at: float | None = None  # monotonic time of the /info read; None: registry figures


def _of_info(info: SEInfo) -> Seen:
    return Seen(
        mode=info.mode,
        takes_uploads=info.status != "maintenance" and "upload" in info.allowed_operations,
        available=info.capacity.available_bytes,
        read_at=time.monotonic(),
    )


class Capacity:
    def __init__(
        self, registry: StorageRegistry, http: httpx.AsyncClient, *, interval: float
    ) -> None:
        self.registry = registry
        self.se = StorageElementClient(http, info_timeout=_INFO_TIMEOUT)
        self.interval = interval
        self._seen: dict[str, Seen] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.refreshes = 0  # completed background/explicit reads of every SE (tests, metrics)

    # -- what placement asks ---------------------------------------------------------------
    def seen(self, se: StorageElementRef) -> Seen:
        """The SE as last seen; the registry's figures until its ``/info`` was read."""
        known = self._seen.get(se.storage_id)
        if known is None:
            known = Seen(mode=se.mode, takes_uploads=True, available=se.available_bytes)
            self._seen[se.storage_id] = known
        return known

    def placed(self, se: StorageElementRef, size: int) -> None:
        """``size`` bytes are on their way to ``se``: count them until its next read."""
        self.seen(se).available -= max(size, 0)

    def refused_room(self, se: StorageElementRef) -> None:
        """The SE answered 507: no room for anything until it says otherwise."""
        self.seen(se).available = 0
        self.refresh_soon()

    def refused_mode(self, se: StorageElementRef) -> None:
        """The SE no longer takes these files (mode changed): skip it until re-read."""
        self.seen(se).takes_uploads = False
        self.refresh_soon()

    def unreachable(self, se: StorageElementRef) -> None:
        self.seen(se).reachable = False
        self.refresh_soon()

    def refresh_soon(self) -> None:
        self._wake.set()

    # -- reading /info -----------------------------------------------------------------------
    async def _read(self, se: StorageElementRef) -> None:
        try:
            info = await self.se.info(se)
        except UpstreamUnavailable:
            self.seen(se).reachable = False
            return
        self._seen[se.storage_id] = _of_info(info)

    async def refresh(self) -> None:
        """Read the ``/info`` of every SE the registry lists online in a writable mode."""
        ses = [se for se in self.registry.all() if se.mode in _MODES and se.status == "online"]
        await asyncio.gather(*(self._read(se) for se in ses))
        known = {se.storage_id for se in self.registry.all()}
        for gone in [sid for sid in self._seen if sid not in known]:
            del self._seen[gone]
        self.refreshes += 1

    async def _refresh_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.refresh()
            except Exception:  # never let the loop die; the next round tries again
                log.exception("reading storage element capacity failed")
            await asyncio.sleep(_MIN_GAP)

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
