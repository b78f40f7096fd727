"""What maintenance jobs report in ``GET /api/v1/maintenance/status``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from artstore.common.errors import Conflict


@dataclass
class RebuildState:
    state: str = "idle"  # idle | running | done | failed
    done: int = 0
    total: int = 0
    job_id: str | None = None
    error: str | None = None
    bad_attrs: int = 0  # unreadable or damaged attrs skipped (reconcile quarantines them)
    refused: int = 0  # files whose row PostgreSQL refused for its data (issue 11)
    refused_file_ids: list[str] = field(default_factory=list)  # the first 100


@dataclass
class ScrubState:
    position: str = ""
    files_checked: int = 0
    mismatches: int = 0
    last_pass_at: datetime | None = None
    # Passes completed since this start; a caller of POST /maintenance/scrub waits for
    # it to grow (the job worker's se.scrub).
    passes: int = 0
    # Set by POST /maintenance/scrub: the scrubber stops waiting for its next pass.
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class RecoveryState:
    """What startup recovery set aside (records it could not apply; see wal/recovery.py)."""

    set_aside: int = 0  # by this start
    set_aside_total: int = 0  # in the set-aside file, every start together
    last: list[dict[str, Any]] = field(default_factory=list)  # newest of this start, no record


@dataclass
class MaintenanceState:
    gc_last: dict[str, Any] | None = None
    reconcile_last: dict[str, Any] | None = None
    rebuild: RebuildState = field(default_factory=RebuildState)
    scrub: ScrubState = field(default_factory=ScrubState)
    recovery: RecoveryState = field(default_factory=RecoveryState)
    quarantined: int = 0
    download_mismatches: int = 0
    running: set[str] = field(default_factory=set)

    def claim(self, job: str) -> None:
        """Mark ``job`` running, or 409 CONFLICT when a run of it is already going.

        Synchronous on purpose: two requests cannot both pass between check and claim.
        """
        if job in self.running:
            raise Conflict(f"{job} is already running", details={"job": job})
        self.running.add(job)

    def release(self, job: str) -> None:
        self.running.discard(job)

    @contextmanager
    def exclusive(self, job: str) -> Iterator[None]:
        self.claim(job)
        try:
            yield
        finally:
            self.release(job)
