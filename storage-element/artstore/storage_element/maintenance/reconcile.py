"""reconcile: attr files, blobs and catalog rows compared; the catalog fixed, damage
reported and moved to quarantine (architecture §5.5).

Constant memory (issue 19): the backend is walked in chunks of ``SE_MAINTENANCE_CHUNK``
storage paths (``maintenance.walk``: a copy's attr, blob and sidecars are never split).
One thread hop reads and judges a chunk; the few copies to act on go through the
FileStore, which judges them again under their locks; the chunk's catalog rows are
compared by file id (``reconcile_catalog``). Rows with no attr are found afterwards by
a keyset-paged pass over this SE's rows. The report lists the first
``SE_RECONCILE_ISSUES_SHOWN`` issues and counts every one by kind in ``summary``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from artstore.common.errors import ArtStoreError
from artstore.storage_element.attr.model import Attr, BadAttr, decode
from artstore.storage_element.attr.row import ROW_COLUMNS, decode_row
from artstore.storage_element.maintenance.hashing import blob_matches
from artstore.storage_element.maintenance.reconcile_catalog import CatalogCheck
from artstore.storage_element.maintenance.walk import Copy, attr_reader, copies
from artstore.storage_element.state import SEState
from artstore.storage_element.store.filestore import sidecar_of

log = logging.getLogger("artstore.storage_element.reconcile")

_FILE_ID, _SIZE, _META, _PREVIEWS = (
    ROW_COLUMNS.index(c) for c in ("file_id", "size", "meta_checksum", "previews")
)


@dataclass
class Report:
    started_at: datetime
    shown: int = 1000  # issues listed; all are counted in ``summary``
    finished_at: datetime | None = None
    files_checked: int = 0
    issues: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    catalog: dict[str, Any] = field(default_factory=dict)

    def add(self, kind: str, path: str, action: str, file_id: str | None = None) -> None:
        self.counts[kind] += 1
        if len(self.issues) >= self.shown:
            return
        item: dict[str, Any] = {"kind": kind, "path": path, "action": action}
        if file_id:
            item["file_id"] = file_id
        self.issues.append(item)

    def as_dict(self) -> dict[str, Any]:
        summary = dict(self.counts)
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "files_checked": self.files_checked,
            "issues": self.issues,
            "issues_truncated": sum(summary.values()) > len(self.issues),
            "summary": summary,
            "catalog": self.catalog,
        }


@dataclass(slots=True)
class Sound:
    """A copy whose attr verified and whose blob has its size. Only what the checks
    need; the whole ``Attr`` only when it names previews (``attr``), else built from
    ``raw`` for the few rows the catalog lacks (``decode_row`` verifies the seal for a
    quarter of what the pydantic decode costs)."""

    path: str
    file_id: str
    meta_checksum: str
    raw: bytes
    attr: Attr | None = None

    def full(self) -> Attr:
        return self.attr if self.attr is not None else decode(self.raw)


def _sound(path: str, attr: Attr) -> Sound:
    return Sound(path, attr.file_id, attr.meta_checksum, attr.encode(), attr)


@dataclass
class Chunk:
    """One chunk of the walk, read and judged off the event loop."""

    checked: int = 0  # attrs listed
    good: list[Sound] = field(default_factory=list)  # attr sound, blob of its size
    bad_attrs: list[tuple[str, bytes, str]] = field(default_factory=list)  # path, raw, why
    damaged: list[tuple[str, Attr, str]] = field(default_factory=list)  # (path, attr, kind)
    orphans: list[str] = field(default_factory=list)  # blobs without an attr
    sidecars: dict[str, int | None] = field(default_factory=dict)  # path -> size


def _next_chunk(node: SEState, walk: Iterator[list[Copy]], deep: bool = False) -> Chunk | None:
    """Blocking: read and judge the next chunk (None: the walk is over)."""
    batch = next(walk, None)
    if batch is None:
        return None
    read = attr_reader(node.backend)
    out = Chunk()
    for copy in batch:
        out.sidecars.update(copy.sidecars)
        if not copy.attr:
            if copy.has_blob:
                out.orphans.append(copy.path)
            continue
        out.checked += 1
        try:
            raw = read(copy.path)
        except FileNotFoundError:
            continue  # removed since the walk (GC, a delete's rename): nothing to judge
        try:
            row = decode_row(raw)
        except BadAttr as exc:
            out.bad_attrs.append((copy.path, raw, str(exc)))
            continue
        kind = None
        if not copy.has_blob:
            kind = "missing_blob"
        elif copy.blob != row[_SIZE]:
            kind = "size_mismatch"
        if kind is not None:
            out.damaged.append((copy.path, decode(raw), kind))
            continue
        # The sidecar checks need the preview entries (few have them), the deep check
        # the checksums: then the whole attr.
        attr = decode(raw) if row[_PREVIEWS] or deep else None
        out.good.append(Sound(copy.path, row[_FILE_ID], row[_META], raw, attr))
    return out


def _file_id_of(raw: bytes) -> str | None:
    """Best effort: the file id of an attr that failed verification."""
    try:
        value = json.loads(raw).get("file_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


async def reconcile(node: SEState, deep: bool = False) -> dict[str, Any]:
    with node.maintenance.exclusive("reconcile"):
        settings = node.settings
        report = Report(started_at=datetime.now(UTC), shown=settings.reconcile_issues_shown)
        catalog = CatalogCheck(node, settings.maintenance_chunk)
        await node.catalog.refused.load()  # chunks ask it which files it holds
        walk = copies(node.backend, chunk=settings.maintenance_chunk)
        while (chunk := await asyncio.to_thread(_next_chunk, node, walk, deep)) is not None:
            report.files_checked += chunk.checked
            good = await _judge(node, chunk, deep, report)
            await _check_orphans(node, chunk.orphans, report)
            await _check_previews(node, good, chunk.sidecars, report)
            await catalog.chunk(good)
        await catalog.finish()
        report.catalog = catalog.report()
        report.finished_at = datetime.now(UTC)
        result = report.as_dict()
        node.maintenance.reconcile_last = {
            k: result[k] for k in ("started_at", "finished_at", "files_checked", "summary")
        }
        return result


async def _judge(node: SEState, chunk: Chunk, deep: bool, report: Report) -> dict[str, Sound]:
    """Quarantine the chunk's damaged copies (each judged again under its locks);
    return the sound attrs by file id."""
    for path, raw, why in chunk.bad_attrs:
        moved = await node.store.quarantine(
            path,
            None,
            f"bad_attr: {why}",
            still_bad=functools.partial(_attr_still_bad, node, path),
        )
        if moved is not None:
            report.add("bad_attr", path, "quarantined", moved.file_id or _file_id_of(raw))
    good: dict[str, Sound] = {}
    damaged = list(chunk.damaged)
    for sound in chunk.good:
        if deep:
            attr = sound.full()
            if not await blob_matches(node.backend, sound.path, attr):
                damaged.append((sound.path, attr, "checksum_mismatch"))  # bit-rot, else SHA-256
                continue
        good[sound.file_id] = sound
    for path, attr, kind in damaged:
        kept = await _quarantine_damaged(node, path, attr, kind, report)
        if kept is not None:
            good[kept.file_id] = _sound(kept.storage_path, kept)
    return good


async def _quarantine_damaged(
    node: SEState, path: str, attr: Attr, kind: str, report: Report
) -> Attr | None:
    """Quarantine one damaged copy; the attr now stored when it was fine after all."""

    async def still_bad() -> bool:
        # The walk is a snapshot: an upload may have landed (or a copy changed) since.
        # Judged again here, under the file's lock, from what is stored now.
        return await _still_damaged(node, path, attr, kind)

    moved = await node.store.quarantine(path, attr.file_id, kind, still_bad=still_bad)
    if moved is None:
        return await node.find_attr(attr.file_id)
    report.add(kind, path, "quarantined", attr.file_id)
    return None


async def _attr_still_bad(node: SEState, path: str) -> bool:
    try:
        raw = await asyncio.to_thread(node.backend.read_attr, path)
    except FileNotFoundError:
        return False
    try:
        decode_row(raw)
    except BadAttr:
        return True
    return False


async def _still_damaged(node: SEState, path: str, judged: Attr, kind: str) -> bool:
    try:
        now = decode(await asyncio.to_thread(node.backend.read_attr, path))
    except (FileNotFoundError, BadAttr):
        return False  # gone, or another problem: the next pass judges it afresh
    if now.file_id != judged.file_id:
        return False
    size = await asyncio.to_thread(node.backend.blob_size, path)
    if kind == "missing_blob":
        return size is None
    if kind == "size_mismatch":
        return size is not None and size != now.size
    # checksum_mismatch: still the same blob and the same claim about it
    return size == now.size and now.checksum == judged.checksum and now.bitrot == judged.bitrot


async def _check_orphans(node: SEState, orphans: list[str], report: Report) -> None:
    for path in orphans:
        moved = await node.store.quarantine(
            path, None, "orphaned_blob", still_bad=functools.partial(_still_orphan, node, path)
        )
        if moved is not None:
            report.add("orphaned_blob", path, "quarantined")


async def _still_orphan(node: SEState, path: str) -> bool:
    """Under the path's lock (an upload holds it from blob to attr): old enough to not be
    an upload between its two renames, and still without its attr."""
    mtime = await asyncio.to_thread(node.backend.blob_mtime, path)
    if mtime is None or time.time() - mtime < node.settings.orphan_grace:
        return False  # gone, or young enough to be an upload between its two renames
    return not await asyncio.to_thread(node.backend.attr_exists, path)


async def _check_previews(
    node: SEState, good: dict[str, Sound], sidecars: dict[str, int | None], report: Report
) -> None:
    """Preview sidecars (issue 16) against the attrs that name them (one chunk: a
    sidecar is always in its copy's chunk).

    - An attr naming a sidecar that is missing or of the wrong length: the entry is
      dropped from the attr (and so from the catalog) so the worker makes it again; in
      a mode that allows no update (ro, ar) it is reported only.
    - A sidecar no attr names (a write cut short, a replaced one, the copy gone or
      quarantined): removed. It is derived data, never the reason to quarantine a file.
    """
    named: set[str] = set()
    for file_id, sound in list(good.items()):
        attr = sound.attr  # set for every attr that names previews
        if attr is None:
            continue
        for ref in attr.previews or ():
            path = sidecar_of(attr.storage_path, ref)
            named.add(path)
            if sidecars.get(path) == ref.bytes:
                continue
            if "update" not in node.modes.allowed_operations():
                report.add("missing_preview", path, "reported", file_id)
                continue
            try:
                now = await node.store.drop_preview(file_id, ref.size, only_if=ref)
            except ArtStoreError as exc:  # changed since (deleted, quarantined...)
                log.info("missing preview kept: %s", exc)
                continue
            if now is not None:
                good[file_id] = _sound(sound.path, now)
                report.add("missing_preview", path, "dropped_from_attr", file_id)
    for path in sorted(set(sidecars) - named):
        if await node.store.remove_orphan_sidecar(path):
            report.add("orphaned_preview", path, "removed")
