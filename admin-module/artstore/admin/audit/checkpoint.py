"""Signed checkpoints of the audit chain's head, and the checks verify makes with them.

The hash chain shows an entry changed or removed in the middle, but not the newest
entries removed: the shorter chain is still consistent. So every
``AM_AUDIT_CHECKPOINT_INTERVAL`` seconds the admin signs the head (seq, hash, time) with
its token-signing key (a compact JWS, ``typ`` ``artstore-audit-checkpoint``) and stores
it. Verify then refuses a chain that ends before a checkpoint's seq (a cut tail), whose
entry at a checkpoint's seq has another hash, or a checkpoint whose signature does not
hold. Each checkpoint is also logged (seq and hash): a copy outside the database.

What a checkpoint cannot show: entries removed after the newest checkpoint together
with that checkpoint's own row is caught only against the logged copies (or by the
writer noticing the head went backwards, which it logs as an error).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jose import jws
from jose.exceptions import JOSEError
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit import repository
from artstore.admin.audit.repository import CheckpointRow
from artstore.admin.state import AdminState

log = logging.getLogger("artstore.admin.audit")

TYP = "artstore-audit-checkpoint"


def payload(seq: int, hash_: str, at: datetime) -> dict[str, Any]:
    return {"seq": seq, "hash": hash_, "at": at.astimezone(UTC).isoformat()}


async def write(state: AdminState) -> int | None:
    """Sign the head if it moved since the last checkpoint; the seq signed, or None."""
    async with state.sessions() as session, session.begin():
        # The chain's own lock: no entry is appended between reading the head and
        # signing it, and replicas take turns (one checkpoint per head).
        await repository.lock_chain(session)
        head = await repository.last_link(session)
        last = await repository.last_checkpoint(session)
        if head is None:
            return None
        if last is not None and head[0] <= last.seq:
            if head[0] < last.seq:
                log.error(
                    "audit chain cut: it ends at seq %d, checkpoint %d was signed at %s",
                    head[0],
                    last.seq,
                    last.at,
                )
            return None
        at = datetime.now(UTC)
        seq, hash_ = head
        kid, signature = await state.keys.sign_document(payload(seq, hash_, at), TYP)
        row = CheckpointRow(seq=seq, hash=hash_, signature=signature, kid=kid, at=at)
        await repository.insert_checkpoint(session, row)
    log.info(
        "audit checkpoint seq=%d hash=%s kid=%s",
        seq,
        hash_,
        kid,
        extra={"fields": {"audit_seq": seq, "audit_hash": hash_}},
    )
    return seq


async def run(state: AdminState) -> None:
    """Checkpoint forever; a failure (database away) is retried at the next tick."""
    interval = state.settings.audit_checkpoint_interval
    while True:
        await asyncio.sleep(interval)
        try:
            await write(state)
        except Exception as exc:
            log.warning("audit checkpoint not written: %s", exc)


def signature_problem(cp: CheckpointRow, keys: dict[str, dict[str, Any]]) -> str | None:
    """Why checkpoint ``cp`` is not genuine, or None."""
    jwk = keys.get(cp.kid)
    if jwk is None:
        return f"checkpoint {cp.seq} is signed by an unknown key {cp.kid!r}"
    try:
        header = jws.get_unverified_header(cp.signature)
        signed = json.loads(jws.verify(cp.signature, jwk, algorithms=["RS256"]))
    except (JOSEError, ValueError):
        return f"checkpoint {cp.seq} has an invalid signature"
    if header.get("typ") != TYP or signed != payload(cp.seq, cp.hash, cp.at):
        return f"checkpoint {cp.seq} does not match what was signed"
    return None


@dataclass
class Verdict:
    ok: bool
    entries_checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoints_checked: int = 0
    last_checkpoint_seq: int | None = None


async def load(
    session: AsyncSession,
) -> tuple[list[CheckpointRow], dict[str, dict[str, Any]]]:
    return await repository.checkpoints(session), await repository.public_keys(session)
