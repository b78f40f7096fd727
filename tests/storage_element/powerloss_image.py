"""Snapshot cuts (issue 12): the durable image powerfs writes while the SE keeps running
(``PowerMount.snapshot``), checked in the test process with the SE's own code.

``check_image`` does to a copy what SE startup does to the disk (``lifecycle.start``
without a catalog: backend prepare, journal recovery, mode load, scan, checkpoint), runs
``reconcile`` deep (bad attr, missing blob, size, checksum, orphaned blob) and holds what
is left to the ledger *window*: the ledger seen just before the snapshot (``before``)
and just after it returned (``after``). Versions only grow, so a file in the image must
be at a state sent between the one acknowledged before and the last one sent after;
``Ledger.sent`` keeps each with its exact bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artstore.storage_element import lifecycle
from artstore.storage_element.layout import ATTR_SUFFIX
from artstore.storage_element.maintenance.reconcile import reconcile
from artstore.storage_element.settings import SESettings
from artstore.storage_element.state import SEState
from tests.storage_element.powerloss import FileState, Ledger


@dataclass(frozen=True)
class Session:
    data: bytes
    offset: int  # acknowledged
    high: int  # the largest offset sent
    completing: bool


@dataclass(frozen=True)
class View:
    """The ledger at one moment."""

    acked: dict[str, FileState | None]  # None: an upload sent, not acknowledged
    mortal: frozenset[str]  # GC may have expired or reclaimed them
    top: dict[str, int]  # the highest version sent
    sessions: dict[str, Session]
    modes: frozenset[str]
    sent: dict[str, dict[int, FileState]]


def view(ledger: Ledger) -> View:
    with ledger.lock:
        return View(
            acked={k: e.acked for k, e in ledger.files.items()},
            mortal=frozenset(k for k, e in ledger.files.items() if e.mortal),
            top={k: max(v) for k, v in ledger.sent.items()},
            sessions={
                k: Session(s.data, s.offset, max(s.offset, s.pending_offset or 0), s.completing)
                for k, s in ledger.sessions.items()
            },
            modes=frozenset({ledger.mode, *([ledger.mode_pending] if ledger.mode_pending else [])}),
            sent={k: dict(v) for k, v in ledger.sent.items()},
        )


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _start_and_reconcile(node: SEState) -> dict[str, Any]:
    tasks = await lifecycle.start(node)
    try:
        return await reconcile(node, deep=True)
    finally:
        await lifecycle.stop(node, tasks)


def recover(image: Path, mode: str) -> tuple[SEState, dict[str, Any]]:
    """SE startup on ``image`` (its ``data/``), then a deep reconcile; no catalog."""
    settings = SESettings(
        data_dir=image / "data",
        mode=mode,
        database_url="",
        orphan_grace=0,  # after recovery a blob without its attr is an orphan at once
        gc_interval=0,
        reconcile_interval=0,
        scrub_bytes_per_sec=0,
    )
    node = SEState(settings, None)
    return node, asyncio.run(_start_and_reconcile(node))


def check_image(image: Path, mode: str, before: View, after: View) -> int:
    """The image after SE recovery, held to the window; returns the acknowledged writes
    it checked. Raises AssertionError on the first thing wrong."""
    node, report = recover(image, mode)
    data = image / "data"
    assert node.maintenance.recovery.set_aside == 0, node.maintenance.recovery.last
    assert report["issues"] == [], report["issues"]
    left = sorted(p.name for p in (data / "tmp").iterdir())
    assert left == [], f"left in tmp/ after recovery: {left}"
    modes = before.modes | after.modes
    assert node.modes.current in modes, (node.modes.current, modes)
    present = _check_files(data, before, after)
    checked = 1  # the mode
    for file_id, acked in before.acked.items():
        if acked is None or file_id in after.mortal:
            continue
        assert file_id in present, f"{file_id}: acknowledged ({acked.version}), not in the image"
        checked += 1
    return checked + _check_sessions(data, before, after, present)


def _check_files(data: Path, before: View, after: View) -> set[str]:
    present: set[str] = set()
    for attr_path in sorted((data / "files").rglob(f"*{ATTR_SUFFIX}")):
        attr = json.loads(attr_path.read_bytes())
        file_id = attr["file_id"]
        present.add(file_id)
        assert file_id in after.sent, f"an attr nobody wrote: {attr_path} ({file_id})"
        acked = before.acked.get(file_id)
        low = acked.version if acked is not None else 1
        states = [s for v, s in after.sent[file_id].items() if low <= v <= after.top[file_id]]
        got = (attr["version"], attr["description"] or "", attr["status"])
        match = [s for s in states if (s.version, s.description, s.status) == got]
        if not match and file_id in after.mortal and attr["status"] == "expired":
            match = [s for s in states if s.version + 1 == attr["version"]]  # GC expired it
        seen = [(s.version, s.description, s.status) for s in states]
        assert match, f"{file_id}: {got} is none of {seen} (acknowledged: {low})"
        state = match[-1]
        # The blob's bytes: reconcile (deep) found the blob matching this checksum.
        assert attr["checksum"] == _sha(state.data) and attr["size"] == len(state.data), file_id
    return present


def _check_sessions(data: Path, before: View, after: View, files: set[str]) -> int:
    checked = 0
    found: dict[str, dict[str, Any]] = {}
    root = data / "uploads"
    for meta in sorted(root.glob("*/session.json")) if root.exists() else []:
        found[meta.parent.name] = json.loads(meta.read_bytes())
    for sid, body in found.items():
        offset = body["offset"]
        sess = after.sessions.get(sid) or before.sessions.get(sid)
        if sess is None:  # created in flight (its id not answered yet), or completed
            assert offset == 0 or sid in files, f"session {sid} nobody wrote: {body}"
            continue
        low = before.sessions[sid].offset if sid in before.sessions else 0
        assert low <= offset <= sess.high, f"session {sid}: offset {offset} not in {low}..{sess}"
        with open(root / sid / "data", "rb") as f:
            assert f.read(offset) == sess.data[:offset], f"session {sid}: bytes differ"
    for sid, sess in before.sessions.items():
        if sid in found:
            checked += 1
            continue
        done = after.sessions.get(sid, sess).completing or sid not in after.sessions
        assert done and sid in files, f"session {sid}: acknowledged, not in the image"
    return checked


def discard(image: Path) -> None:
    shutil.rmtree(image)
    image.with_name(image.name + ".json").unlink()
