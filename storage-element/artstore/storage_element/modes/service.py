"""Modes and their transitions (architecture §5.4), persisted in ``mode.json``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from artstore.common.errors import ConfirmationRequired, InvalidTransition, ModeNotAllowed
from artstore.contracts.se import Mode, Operation
from artstore.storage_element.faults import FaultInjector
from artstore.storage_element.fsutil import atomic_replace
from artstore.storage_element.layout import Layout
from artstore.storage_element.store.changes import MODE
from artstore.storage_element.store.errors import ModeChanged
from artstore.storage_element.store.locks import PublishGate
from artstore.storage_element.wal.journal import Journal

ALLOWED: dict[str, frozenset[str]] = {
    "edit": frozenset({"upload", "download", "update", "delete", "list"}),
    "rw": frozenset({"upload", "download", "update", "list"}),
    "ro": frozenset({"download", "list"}),
    "ar": frozenset({"list"}),
}

# (from, to) -> needs confirm
TRANSITIONS: dict[tuple[str, str], bool] = {
    ("rw", "ro"): False,
    ("ro", "ar"): False,
    ("ro", "rw"): True,
}

RETENTION_OF_MODE = {"edit": "temporary", "rw": "permanent"}


def read_mode_file(layout: Layout) -> str | None:
    try:
        data = json.loads(layout.mode_file.read_bytes())
    except FileNotFoundError:
        return None
    mode = data.get("mode")
    return mode if mode in ALLOWED else None


class ModeService:
    def __init__(self, layout: Layout, journal: Journal, faults: FaultInjector, mode: Mode) -> None:
        self.layout = layout
        self.journal = journal
        self.faults = faults
        self.current: str = mode
        self._lock = asyncio.Lock()
        # Writes hold it shared from their mode re-check to their commit point; a
        # transition holds it exclusively (see store/locks.py).
        self.gate = PublishGate()

    def load(self, configured: str) -> None:
        """mode.json wins over the configured mode; the first start writes it."""
        stored = read_mode_file(self.layout)
        self.current = stored or configured
        if stored is None:
            self._write(self.current, None)

    def _write(self, mode: str, previous: str | None) -> None:
        body = {
            "mode": mode,
            "previous_mode": previous,
            "changed_at": datetime.now(UTC).isoformat(),
        }
        # Beside mode.json, not in tmp/ (which holds in-flight uploads only).
        atomic_replace(self.layout.mode_file, json.dumps(body).encode(), self.layout.data_dir)

    def allowed_operations(self) -> list[str]:
        return sorted(ALLOWED[self.current])

    def require(self, op: Operation) -> None:
        if op not in ALLOWED[self.current]:
            raise ModeNotAllowed(
                f"{op} is not allowed in mode {self.current}",
                details={"mode": self.current, "operation": op},
            )

    @asynccontextmanager
    async def admit(self, op: str | None) -> AsyncIterator[None]:
        """Hold the publish gate (shared) with ``op`` allowed in the current mode; a
        write calls it around its commit point. ``None``: upkeep, no gate needed."""
        if op is None:
            yield
            return
        async with self.gate.shared():
            if op not in ALLOWED[self.current]:
                raise ModeChanged(
                    f"the mode changed to {self.current} while this {op} was in flight",
                    details={"mode": self.current, "operation": op},
                )
            yield

    async def transition(self, target: str, confirm: bool) -> tuple[str, str, datetime]:
        async with self._lock:
            previous = self.current
            rule = TRANSITIONS.get((previous, target))
            if rule is None:
                raise InvalidTransition(
                    f"cannot change mode from {previous} to {target}",
                    details={"current_mode": previous, "target_mode": target},
                )
            if rule and not confirm:
                raise ConfirmationRequired(
                    f'{previous} -> {target} needs "confirm": true',
                    details={"current_mode": previous, "target_mode": target},
                )
            # Exclusive: writes admitted under the old mode have reached their commit
            # point (or wait, and will find the new mode) before this answers.
            async with self.gate.exclusive():
                txn = await self.journal.begin(MODE.name, {"from": previous, "to": target})
                self.faults.point(MODE.step("after_begin"))
                await asyncio.to_thread(self._write, target, previous)
                self.faults.point(MODE.step("after_write"))
                self.current = target
                await self.journal.commit(txn, owes_catalog=False)
                self.faults.point(MODE.step("after_commit"))
            return previous, target, datetime.now(UTC)
