"""Startup recovery (architecture §5.3): every journaled change becomes done or never-happened.

A change without an outcome is decided by its kind's rule in ``store/changes.py`` (the
table the write path names its steps from):

- ``attr_present`` (upload): done when its attr reached its final name (the commit
  point), otherwise rolled back: its blob, if it was renamed, goes.
- ``attr_version`` (update/delete/expire): done when the attr on disk carries the
  version it was writing, otherwise it never happened.
- ``attr_absent`` (reclaim): done when the attr is gone; then the blob goes too, and
  the preview sidecars the record lists.
- ``preview`` follows ``attr_version``; its new sidecar goes when it did not happen, the
  sidecars it replaced go when it did.
- ``mode_file`` (mode): done exactly when ``mode.json`` says so; nothing to undo.
- Any other kind (upload sessions) has nothing on the backend to decide: never happened.
Committed file changes whose catalog row was never confirmed stay owed.
Then ``tmp/`` is emptied, the owed updates are carried into a fresh segment and the
old segments are deleted (checkpoint).

Recovery is *total*: a record that cannot be applied (malformed, wrong types, a storage
path the filesystem or S3 refuses, an undecodable attr, a vanished folder...) never stops
the SE from starting. It is *set aside*: appended with its reason to
``<wal>/set-aside.jsonl`` (fsynced before the checkpoint may delete its segment), logged
once, counted in ``maintenance/status`` and ``/metrics``, and never retried. Only errors
that say nothing about the record (the S3 server unreachable) still stop the start: setting
every record aside because the network blinked would lose them all.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artstore.storage_element.attr.model import BadAttr, decode
from artstore.storage_element.backends.base import Backend
from artstore.storage_element.fsutil import fsync_dir
from artstore.storage_element.layout import preview_owner
from artstore.storage_element.store.changes import CHANGES, FILE_KINDS
from artstore.storage_element.wal.records import SET_ASIDE_FILE, read_all

log = logging.getLogger("artstore.storage_element.recovery")

# Records whose txn field must be a string; any other op (``flush``) carries none.
TXN_OPS = ("begin", "owed", "commit", "abort", "catalog_done")
# How many set-aside entries ``maintenance/status`` shows.
SHOWN_SET_ASIDE = 10


@dataclass
class SetAside:
    """A journal record recovery could not apply, and why."""

    position: int  # the record's place in the journal (0 = the first record read)
    segment: int
    txn: str | None
    kind: str | None
    reason: str
    record: Any

    def entry(self) -> dict[str, Any]:
        return {
            "set_aside_at": datetime.now(UTC).isoformat(),
            "segment": self.segment,
            "txn": self.txn,
            "kind": self.kind,
            "reason": self.reason,
            "record": self.record,
        }


@dataclass
class RecoveryReport:
    records: int = 0
    rolled_forward: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    owed: dict[str, str] = field(default_factory=dict)  # txn -> file_id
    # Storage paths every record read names: the file index reads their attrs again.
    paths: set[str] = field(default_factory=set)
    tmp_removed: int = 0
    set_aside: list[dict[str, Any]] = field(default_factory=list)  # entries saved this start
    set_aside_total: int = 0  # lines in the set-aside file, every start together


@dataclass
class _Txn:
    kind: str
    data: dict[str, Any]
    position: int
    segment: int
    record: dict[str, Any]
    outcome: str | None = None
    catalog_done: bool = False


class MalformedRecord(ValueError):
    """A record whose shape or field types are not what the journal writes."""


def _attr_version(backend: Backend, storage_path: str) -> int | None:
    try:
        return decode(backend.read_attr(storage_path)).version
    except (FileNotFoundError, BadAttr):
        return None


def _record_fault(exc: Exception) -> bool:
    """True when ``exc`` is about the record (set it aside), False when it is about the
    environment (an unreachable S3 server: let the start fail and be retried)."""
    if isinstance(exc, OSError | ValueError | TypeError | KeyError | BadAttr | UnicodeError):
        return True
    # botocore's ClientError, without importing it: S3 answered 4xx about this key (e.g.
    # KeyTooLongError). 5xx and connection errors are the server's, not the record's.
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return isinstance(status, int) and 400 <= status < 500
    return False


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        return f"{type(exc).__name__} {name}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


def _read(wal_dir: Path, report: RecoveryReport, aside: list[SetAside]) -> dict[str, _Txn]:
    """Every transaction of the journal; malformed records are set aside."""
    txns: dict[str, _Txn] = {}
    for position, (segment, rec) in enumerate(read_all(wal_dir)):
        report.records += 1
        try:
            if not isinstance(rec, dict):
                raise MalformedRecord("record is not a JSON object")
            op, txn = rec.get("op"), rec.get("txn")
            if op not in TXN_OPS:
                continue  # flush markers carry nothing to recover
            if not isinstance(txn, str):
                raise MalformedRecord(f"{op} record without a string txn")
            if op == "begin":
                kind, data = rec.get("kind"), rec.get("data")
                if not isinstance(kind, str):
                    raise MalformedRecord("begin record without a string kind")
                if not isinstance(data, dict):
                    raise MalformedRecord("begin record whose data is not an object")
                txns[txn] = _Txn(kind, data, position, segment, rec)
            elif op == "owed":
                file_id = rec.get("file_id")
                if not isinstance(file_id, str):
                    raise MalformedRecord("owed record without a string file_id")
                txns[txn] = _Txn(
                    "owed", {"file_id": file_id}, position, segment, rec, outcome="commit"
                )
            elif txn in txns:
                if op in ("commit", "abort"):
                    txns[txn].outcome = op
                else:
                    txns[txn].catalog_done = True
        except MalformedRecord as exc:
            txn_field = rec.get("txn") if isinstance(rec, dict) else None
            aside.append(
                SetAside(
                    position,
                    segment,
                    txn_field if isinstance(txn_field, str) else None,
                    None,
                    f"malformed record: {exc}",
                    rec,
                )
            )
    return txns


def resolve(backend: Backend, wal_dir: Path) -> RecoveryReport:
    """Blocking: run in a worker thread before the service accepts requests."""
    report = RecoveryReport()
    aside: list[SetAside] = []
    txns = _read(wal_dir, report, aside)

    for txn, t in txns.items():
        path = t.data.get("storage_path")
        if isinstance(path, str):
            report.paths.add(path)
        try:
            outcome = _decide(backend, t) if t.outcome is None else t.outcome
            file_id = t.data.get("file_id")
            owes = outcome == "commit" and not t.catalog_done and t.kind in (*FILE_KINDS, "owed")
            if owes and file_id is not None and not isinstance(file_id, str):
                raise MalformedRecord("file_id is not a string")
        except Exception as exc:
            if not _record_fault(exc):
                raise
            aside.append(SetAside(t.position, t.segment, txn, t.kind, _reason(exc), t.record))
            continue
        if t.outcome is None:
            (report.rolled_forward if outcome == "commit" else report.rolled_back).append(txn)
        t.outcome = outcome
        if owes and isinstance(file_id, str):
            report.owed[txn] = file_id

    # Saved before anything else happens: the checkpoint that follows recovery deletes
    # the segments these records came from.
    report.set_aside = [a.entry() for a in sorted(aside, key=lambda a: a.position)]
    report.set_aside_total = save_set_aside(wal_dir, report.set_aside)
    for entry in report.set_aside:  # once: a set-aside record is never read again
        log.error(
            "journal record set aside",
            extra={"fields": {k: v for k, v in entry.items() if k != "record"}},
        )

    report.tmp_removed = backend.sweep_tmp()
    if report.rolled_forward or report.rolled_back or report.tmp_removed or aside:
        log.warning(
            "recovery resolved interrupted changes",
            extra={
                "fields": {
                    "rolled_forward": len(report.rolled_forward),
                    "rolled_back": len(report.rolled_back),
                    "tmp_removed": report.tmp_removed,
                    "owed": len(report.owed),
                    "set_aside": len(aside),
                }
            },
        )
    return report


def save_set_aside(wal_dir: Path, entries: list[dict[str, Any]]) -> int:
    """Append ``entries`` durably to the set-aside file; return how many lines it holds.

    ASCII JSON: a record read back from the journal may hold lone surrogates, which
    only escaped output can carry.
    """
    path = wal_dir / SET_ASIDE_FILE
    if entries:
        created = not path.exists()
        lines = "".join(json.dumps(e, ensure_ascii=True, default=str) + "\n" for e in entries)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            view = memoryview(lines.encode("ascii"))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(wal_dir)
    return count_set_aside(wal_dir)


def count_set_aside(wal_dir: Path) -> int:
    try:
        with open(wal_dir / SET_ASIDE_FILE, "rb") as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


def _decide(backend: Backend, t: _Txn) -> str:
    change = CHANGES.get(t.kind)
    if change is not None and change.rule == "mode_file":
        return "commit"  # mode.json is the truth; ModeService.load reads it
    path = t.data.get("storage_path")
    if change is None or path is None:
        return "abort"  # nothing on the backend says it happened
    if not isinstance(path, str):
        raise MalformedRecord("storage_path is not a string")
    if change.rule == "attr_present":
        if backend.attr_exists(path):
            return "commit"
        backend.remove_blob(path)  # a blob without its attr never becomes visible
        return "abort"
    if change.rule == "attr_absent":
        if backend.attr_exists(path):
            return "abort"  # the attr (the commit point) was never removed
        backend.remove_blob(path)  # finish it: a blob without attr never comes back
        _remove_sidecars(backend, path, t.data.get("sidecars"))
        return "commit"
    wanted = t.data.get("version", 0)
    if not isinstance(wanted, int) or isinstance(wanted, bool):
        raise MalformedRecord("version is not an integer")
    version = _attr_version(backend, path)
    done = version is not None and version >= wanted
    # A preview change (issue 16): its new sidecar was never named when it did not
    # happen; the sidecars it replaced are named no more when it did.
    if done:
        _remove_sidecars(backend, path, t.data.get("drop"))
    elif "sidecar" in t.data:
        _remove_sidecars(backend, path, [t.data["sidecar"]])
    return "commit" if done else "abort"


def _remove_sidecars(backend: Backend, storage_path: str, names: object) -> None:
    """Remove the preview sidecars a record lists (only sidecars of ``storage_path``)."""
    if names is None:
        return
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise MalformedRecord("sidecar names are not a list of strings")
    for name in names:
        owner = preview_owner(name)
        if owner is None or owner[0] != storage_path:
            raise MalformedRecord(f"{name!r} is not a preview sidecar of {storage_path!r}")
        backend.remove_blob(name)
