"""Startup recovery (DESIGN §5.3): every journaled change becomes done or never-happened.

- An ``upload`` without an outcome is rolled forward when its attr reached its final
  name (the commit point), otherwise rolled back: its blob, if it was renamed, goes.
- An ``update``/``delete`` without an outcome is done when the attr on disk carries
  the version it was writing, otherwise it never happened.
- A ``mode`` change is done exactly when ``mode.json`` says so; nothing to undo.
- Committed file changes whose catalog row was never confirmed stay owed.
Then ``tmp/`` is emptied, the owed updates are carried into a fresh segment and the
old segments are deleted (checkpoint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from artstore.storage_element.attr.model import BadAttr, decode
from artstore.storage_element.backends.base import Backend
from artstore.storage_element.wal.records import read_all

log = logging.getLogger("artstore.storage_element.recovery")

FILE_KINDS = ("upload", "update", "delete", "expire", "reclaim")


@dataclass
class RecoveryReport:
    records: int = 0
    rolled_forward: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    owed: dict[str, str] = field(default_factory=dict)  # txn -> file_id
    tmp_removed: int = 0


@dataclass
class _Txn:
    kind: str
    data: dict[str, Any]
    outcome: str | None = None
    catalog_done: bool = False


def _attr_version(backend: Backend, storage_path: str) -> int | None:
    try:
        return decode(backend.read_attr(storage_path)).version
    except (FileNotFoundError, BadAttr):
        return None


def resolve(backend: Backend, wal_dir: Any) -> RecoveryReport:
    """Blocking: run in a worker thread before the service accepts requests."""
    report = RecoveryReport()
    txns: dict[str, _Txn] = {}
    for _segment, rec in read_all(wal_dir):
        report.records += 1
        op, txn = rec.get("op"), rec.get("txn")
        if not isinstance(txn, str):
            continue
        if op == "begin":
            txns[txn] = _Txn(kind=str(rec.get("kind")), data=dict(rec.get("data") or {}))
        elif op == "owed":
            txns[txn] = _Txn(kind="owed", data={"file_id": rec.get("file_id")}, outcome="commit")
        elif txn in txns:
            if op in ("commit", "abort"):
                txns[txn].outcome = op
            elif op == "catalog_done":
                txns[txn].catalog_done = True

    for txn, t in txns.items():
        if t.outcome is None:
            t.outcome = _decide(backend, t)
            (report.rolled_forward if t.outcome == "commit" else report.rolled_back).append(txn)
        if t.outcome == "commit" and not t.catalog_done and t.kind in (*FILE_KINDS, "owed"):
            file_id = t.data.get("file_id")
            if isinstance(file_id, str):
                report.owed[txn] = file_id

    report.tmp_removed = backend.sweep_tmp()
    if report.rolled_forward or report.rolled_back or report.tmp_removed:
        log.warning(
            "recovery resolved interrupted changes",
            extra={
                "fields": {
                    "rolled_forward": len(report.rolled_forward),
                    "rolled_back": len(report.rolled_back),
                    "tmp_removed": report.tmp_removed,
                    "owed": len(report.owed),
                }
            },
        )
    return report


def _decide(backend: Backend, t: _Txn) -> str:
    path = t.data.get("storage_path")
    if t.kind == "mode" or not isinstance(path, str):
        return "commit" if t.kind == "mode" else "abort"
    if t.kind == "upload":
        if backend.attr_exists(path):
            return "commit"
        backend.remove_blob(path)  # a blob without its attr never becomes visible
        return "abort"
    if t.kind == "reclaim":
        if backend.attr_exists(path):
            return "abort"  # the attr (the commit point) was never removed
        backend.remove_blob(path)  # finish it: a blob without attr never comes back
        return "commit"
    version = _attr_version(backend, path)
    wanted = int(t.data.get("version", 0))
    return "commit" if version is not None and version >= wanted else "abort"
