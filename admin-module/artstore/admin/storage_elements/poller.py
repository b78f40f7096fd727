"""The background poller: one admin replica at a time (a lease in PostgreSQL) polls
every registered SE each ``AM_SE_POLL_INTERVAL`` seconds."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid

from artstore.admin.state import AdminState
from artstore.admin.storage_elements import repository as repo
from artstore.admin.storage_elements import service

log = logging.getLogger("artstore.admin.poller")

LEASE = "se-poller"


class Poller:
    def __init__(self, state: AdminState) -> None:
        self.state = state
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.interval = state.settings.se_poll_interval
        # Long enough to ride out one slow round, short enough that a dead leader is
        # replaced within a few intervals.
        self.lease_ttl = max(3 * self.interval, 2 * state.settings.se_timeout + self.interval)
        self.leader = False
        self.last_round_at: float | None = None

    async def _take_lease(self) -> bool:
        async with self.state.sessions() as session, session.begin():
            return await repo.take_lease(session, LEASE, self.holder, self.lease_ttl)

    async def round(self) -> None:
        leader = await self._take_lease()
        if leader != self.leader:
            log.info(
                "poller %s",
                "leads" if leader else "stands by",
                extra={"fields": {"holder": self.holder}},
            )
            self.leader = leader
        if not leader:
            return
        async with self.state.sessions() as session:
            polled = await service.poll_all(session, self.state.http, self.state.events)
        self.state.metrics.se_polls.inc(polled)
        self.last_round_at = time.monotonic()

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next round tries again; never let the loop die
                log.exception("poll round failed")
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
