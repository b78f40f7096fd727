"""The scrubber: re-hashes every blob at a bounded rate, forever, and quarantines copies
whose bytes no longer match their checksum. Its position survives restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from artstore.storage_element.attr.model import Attr
from artstore.storage_element.fsutil import atomic_replace
from artstore.storage_element.maintenance.hashing import blob_matches
from artstore.storage_element.maintenance.walk import Copy, copies
from artstore.storage_element.state import SEState

log = logging.getLogger("artstore.storage_element.scrub")

SAVE_EVERY_SECONDS = 5.0


def _state_file(node: SEState) -> str:
    return str(node.layout.data_dir / "scrub.json")


def load_position(node: SEState) -> None:
    """Blocking: read where the last run stopped."""
    state = node.maintenance.scrub
    try:
        with open(_state_file(node), "rb") as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError):
        return
    state.position = str(data.get("position", ""))
    state.files_checked = int(data.get("files_checked", 0))
    state.mismatches = int(data.get("mismatches", 0))
    last = data.get("last_pass_at")
    state.last_pass_at = datetime.fromisoformat(last) if last else None


def _save(node: SEState) -> None:
    s = node.maintenance.scrub
    body = {
        "position": s.position,
        "files_checked": s.files_checked,
        "mismatches": s.mismatches,
        "last_pass_at": s.last_pass_at.isoformat() if s.last_pass_at else None,
    }
    # The temp file sits beside scrub.json, not in tmp/: tmp/ holds in-flight uploads
    # only, so that "tmp/ is empty" stays a meaningful check after recovery.
    path = node.layout.data_dir / "scrub.json"
    atomic_replace(path, json.dumps(body).encode(), path.parent)


def _next_chunk(node: SEState, walk: Iterator[list[Copy]]) -> list[tuple[str, Attr | None]] | None:
    """Blocking: the next chunk's storage paths that have an attr, each with its attr
    (None: unreadable, so quarantined by the read, or without a blob, which is
    reconcile's to report). None: the walk is over."""
    batch = next(walk, None)
    if batch is None:
        return None
    found: list[tuple[str, Attr | None]] = []
    for copy in batch:
        if not copy.attr:
            continue
        attr = node.read_attr_sync(copy.path) if copy.has_blob else None
        found.append((copy.path, attr))
    return found


async def scrub_pass(node: SEState) -> int:
    """One pass from the saved position to the end; returns the files checked.

    The backend is walked from the saved position on, in storage-path order, one chunk
    at a time (issue 19): nothing is held but the chunk."""
    state = node.maintenance.scrub
    rate = node.settings.scrub_bytes_per_sec
    checked = 0
    saved_at = time.monotonic()
    walk = copies(node.backend, chunk=node.settings.maintenance_chunk, start_after=state.position)
    while (chunk := await asyncio.to_thread(_next_chunk, node, walk)) is not None:
        for path, attr in chunk:
            if attr is not None:
                try:
                    await _check(node, path, attr, rate)
                except OSError as exc:  # removed meanwhile (GC, quarantine) or unreadable
                    log.warning("scrub skipped %s: %s", path, exc)
            state.position = path
            state.files_checked += 1
            checked += 1
            if time.monotonic() - saved_at > SAVE_EVERY_SECONDS:
                await asyncio.to_thread(_save, node)
                saved_at = time.monotonic()
    state.position = ""
    state.last_pass_at = datetime.now(UTC)
    await asyncio.to_thread(_save, node)
    state.passes += 1
    return checked


async def _check(node: SEState, path: str, attr: Attr, rate: int) -> None:
    # The attr's bit-rot hash when it has one, else SHA-256 (issue 19).
    if not await blob_matches(node.backend, path, attr, rate):
        node.maintenance.scrub.mismatches += 1
        judged = attr

        async def still_bad() -> bool:
            # Re-read under the file's lock: the same copy, still claiming that checksum.
            now = await asyncio.to_thread(node.read_attr_sync, path)
            return (
                now is not None and now.checksum == judged.checksum and now.bitrot == judged.bitrot
            )

        await node.store.quarantine(
            path, attr.file_id, "checksum_mismatch (scrub)", still_bad=still_bad
        )


async def scrub_forever(node: SEState) -> None:
    if node.settings.scrub_bytes_per_sec <= 0:
        return
    while True:
        try:
            await scrub_pass(node)
        except Exception:
            log.exception("scrub pass failed; retrying later")
        # Until the next pass is due, or one is asked for (POST /maintenance/scrub).
        wake = node.maintenance.scrub.wake
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), node.settings.scrub_pass_interval)
        wake.clear()
