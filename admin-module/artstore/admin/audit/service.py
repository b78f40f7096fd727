"""Recording audit entries in a hash chain, and verifying the chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit import checkpoint, repository
from artstore.admin.audit.checkpoint import Verdict
from artstore.admin.audit.repository import AuditFilters, AuditRow
from artstore.common.auth import Principal
from artstore.common.logs import request_id_var

GENESIS = "0" * 64
HASHED_FIELDS = (
    "seq",
    "at",
    "actor",
    "actor_kind",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "request_id",
    "details",
    "prev_hash",
)


@dataclass(frozen=True)
class Actor:
    sub: str
    kind: str  # user | service_account | anonymous | system

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.sub, principal.kind)


SYSTEM = Actor("system", "system")


@dataclass
class Entry:
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str = "success"
    details: dict[str, Any] = field(default_factory=dict)


def entry_hash(row: AuditRow) -> str:
    """SHA-256 over the canonical JSON of every field but the hash itself."""
    data: dict[str, Any] = {k: getattr(row, k) for k in HASHED_FIELDS}
    at = data["at"]
    data["at"] = at.astimezone(UTC).isoformat() if isinstance(at, datetime) else at
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record(session: AsyncSession, actor: Actor, entry: Entry) -> None:
    """Append an entry inside the caller's transaction: it commits with the change."""
    await repository.lock_chain(session)
    last = await repository.last_link(session)
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    rid = request_id_var.get()
    row = AuditRow(
        seq=seq,
        # Microseconds are what PostgreSQL keeps, so the hash survives the round trip.
        at=datetime.now(UTC),
        actor=actor.sub,
        actor_kind=actor.kind,
        action=entry.action,
        target_type=entry.target_type,
        target_id=entry.target_id,
        outcome=entry.outcome,
        request_id=None if rid == "-" else rid,
        details=entry.details,
        prev_hash=prev,
        hash="",  # not hashed: entry_hash leaves it out
    )
    await repository.insert(session, replace(row, hash=entry_hash(row)))


async def record_alone(session: AsyncSession, actor: Actor, entry: Entry) -> None:
    """An entry in its own transaction (for failures, whose change was rolled back)."""
    async with session.begin():
        await record(session, actor, entry)


async def search(
    session: AsyncSession, filters: AuditFilters, limit: int, offset: int
) -> tuple[list[AuditRow], int]:
    async with session.begin():
        return await repository.search(session, filters, limit, offset)


async def verify(session: AsyncSession) -> Verdict:
    """Each entry must hash to its ``hash`` and name its predecessor's hash, seqs must
    run 1, 2, 3... (no entry removed), every signed checkpoint must be genuine and find
    its hash at its seq, and the chain must reach the newest checkpoint (no cut tail)."""
    prev, expected_seq, checked = GENESIS, 1, 0
    async with session.begin():
        cps, keys = await checkpoint.load(session)
        last_cp = cps[-1].seq if cps else None

        def bad(seq: int | None, reason: str) -> Verdict:
            return Verdict(False, checked, seq, reason, len(cps), last_cp)

        for cp in cps:
            problem = checkpoint.signature_problem(cp, keys)
            if problem is not None:
                return bad(cp.seq, problem)
        signed = {cp.seq: cp.hash for cp in cps}
        async for row in repository.walk(session):
            checked += 1
            seq = row.seq
            if seq != expected_seq:
                return bad(expected_seq, f"entry {expected_seq} is missing")
            if row.prev_hash != prev or entry_hash(row) != row.hash:
                return bad(seq, f"entry {seq} was changed")
            if signed.get(seq, row.hash) != row.hash:
                return bad(seq, f"entry {seq} differs from its signed checkpoint")
            prev, expected_seq = row.hash, seq + 1
    if last_cp is not None and expected_seq <= last_cp:
        return bad(
            expected_seq,
            f"the chain ends at entry {expected_seq - 1} but checkpoint {last_cp} was "
            "signed: its newest entries were removed",
        )
    return Verdict(True, checked, None, None, len(cps), last_cp)
