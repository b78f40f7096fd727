"""What repair decides, without I/O (docs/repair.md): which SEs count, how many copies a
file is owed, which of its copies are healthy, where a copy may come from and go to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from artstore.common.registry import KIND_MODE, StorageElementRef
from artstore.contracts.copies import wanted_copies
from artstore.worker.repair.repository import CopyRow, SeRow

# An attr is at most this many bytes (architecture §5.2): a destination needs room for
# the blob and its attr.
ATTR_MAX = 4096
# Modes whose copies can be read (architecture §5.4: ar serves no downloads).
READABLE_MODES = frozenset({"edit", "rw", "ro"})
READABLE_STATUSES = frozenset({"online", "degraded"})


def ref(se: SeRow) -> StorageElementRef:
    """The registry entry the SE client addresses."""
    return StorageElementRef(
        storage_id=se.storage_id,
        name=se.name,
        url=se.url.rstrip("/"),
        mode=se.mode,
        status=se.status,
        backend=se.backend,
        total_bytes=se.total_bytes,
        used_bytes=se.used_bytes,
        available_bytes=se.available_bytes,
        file_count=se.file_count,
    )


@dataclass(frozen=True)
class Fleet:
    """The registered SEs as the admin's poller last saw them."""

    ses: dict[str, SeRow]
    permanent_copies: int

    @classmethod
    def of(cls, rows: Iterable[SeRow], permanent_copies: int) -> Fleet:
        return cls({se.storage_id: se for se in rows}, permanent_copies)

    @property
    def counted(self) -> list[str]:
        """SEs whose copies count: registered and not offline past the grace period."""
        return sorted(sid for sid, se in self.ses.items() if not se.lapsed)

    @property
    def rw_online(self) -> int:
        return sum(1 for se in self.ses.values() if se.mode == "rw" and se.status == "online")

    def wanted(self, retention: str) -> int:
        """Copies owed now (the policy, capped by the rw SEs online)."""
        return wanted_copies(retention, self.rw_online, self.permanent_copies)

    def configured(self, retention: str) -> int:
        """Copies owed with enough rw SEs; fewer is "under-replicated" (the gauge)."""
        return self.permanent_copies if retention == "permanent" else 1

    def readable(self, storage_id: str) -> bool:
        se = self.ses.get(storage_id)
        return se is not None and se.status in READABLE_STATUSES and se.mode in READABLE_MODES

    def destinations(
        self, retention: str, size: int, exclude: Iterable[str], prefer: str | None
    ) -> list[SeRow]:
        """SEs that may take a new copy: the mode that holds ``retention`` files, online,
        room for the blob and its attr, none of ``exclude`` (SEs that have the id). The
        ``prefer``red one first, then the emptiest."""
        mode = KIND_MODE.get(retention)
        skip = set(exclude)
        usable = [
            se
            for se in self.ses.values()
            if se.mode == mode
            and se.status == "online"
            and se.available_bytes >= size + ATTR_MAX
            and se.storage_id not in skip
        ]
        return sorted(
            usable, key=lambda se: (se.storage_id != prefer, -se.available_bytes, se.storage_id)
        )


@dataclass
class Plan:
    """One file's copies judged against the policy."""

    speaker: CopyRow | None
    healthy: list[CopyRow] = field(default_factory=list)
    wanted: int = 0
    # SEs that have a row of this id that is not quarantined: no new copy goes there
    # (the SE would answer 409).
    holders: set[str] = field(default_factory=set)

    @property
    def needed(self) -> int:
        return max(0, self.wanted - len(self.healthy))

    def sources(self, fleet: Fleet) -> list[CopyRow]:
        """Healthy copies that can be read now."""
        return [c for c in self.healthy if fleet.readable(c.storage_element_id)]


def judge(copies: Sequence[CopyRow], fleet: Fleet) -> Plan:
    """``copies`` in ``repository.copies`` order (the first that is not quarantined
    speaks for the file). A file that is deleted or expired is owed nothing: its copies
    go away by themselves (docs/repair.md)."""
    live = [c for c in copies if not c.quarantined]
    if not live:
        return Plan(None)
    speaker = live[0]
    plan = Plan(speaker, holders={c.storage_element_id for c in live})
    if speaker.status != "active":
        return plan
    counted = set(fleet.counted)
    plan.healthy = [
        c
        for c in live
        if c.checksum == speaker.checksum
        and c.status == speaker.status
        and c.storage_element_id in counted
    ]
    plan.wanted = fleet.wanted(speaker.retention_policy)
    return plan
