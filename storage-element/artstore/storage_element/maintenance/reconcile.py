"""reconcile: attr files, blobs and catalog rows compared; the catalog fixed, damage
reported and moved to quarantine (architecture §5.5)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from artstore.common.errors import ArtStoreError
from artstore.storage_element.attr.model import Attr, BadAttr, decode
from artstore.storage_element.catalog.errors import safe_reason
from artstore.storage_element.catalog.sync import CATALOG_ERRORS
from artstore.storage_element.files.index import attr_storage_path
from artstore.storage_element.layout import preview_owner
from artstore.storage_element.maintenance.hashing import blob_matches
from artstore.storage_element.state import SEState
from artstore.storage_element.store.filestore import sidecar_of

log = logging.getLogger("artstore.storage_element.reconcile")


@dataclass
class Report:
    started_at: datetime
    finished_at: datetime | None = None
    files_checked: int = 0
    issues: list[dict[str, Any]] = field(default_factory=list)
    catalog: dict[str, Any] = field(default_factory=dict)

    def add(self, kind: str, path: str, action: str, file_id: str | None = None) -> None:
        item: dict[str, Any] = {"kind": kind, "path": path, "action": action}
        if file_id:
            item["file_id"] = file_id
        self.issues.append(item)

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, int] = {}
        for issue in self.issues:
            summary[issue["kind"]] = summary.get(issue["kind"], 0) + 1
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "files_checked": self.files_checked,
            "issues": self.issues,
            "summary": summary,
            "catalog": self.catalog,
        }


@dataclass
class Listing:
    """One walk of the backend: attrs, blobs and preview sidecars (path -> size)."""

    attrs: list[str] = field(default_factory=list)
    blobs: dict[str, int] = field(default_factory=dict)
    sidecars: dict[str, int] = field(default_factory=dict)


def _listing(node: SEState) -> Listing:
    found = Listing()
    for rel, size in node.backend.walk():
        path = attr_storage_path(rel)
        if path is not None:
            found.attrs.append(path)
        elif preview_owner(rel) is not None:
            found.sidecars[rel] = size
        else:
            found.blobs[rel] = size
    found.attrs.sort()
    return found


def _file_id_of(raw: bytes) -> str | None:
    """Best effort: the file id of an attr that failed verification."""
    try:
        value = json.loads(raw).get("file_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


async def reconcile(node: SEState, deep: bool = False) -> dict[str, Any]:
    with node.maintenance.exclusive("reconcile"):
        report = Report(started_at=datetime.now(UTC))
        listing = await asyncio.to_thread(_listing, node)
        attr_paths, blobs = listing.attrs, listing.blobs
        good: dict[str, Attr] = {}
        for path in attr_paths:
            report.files_checked += 1
            attr = await _check_copy(node, path, blobs.get(path), deep, report)
            if attr is not None:
                good[attr.file_id] = attr
        await _check_orphans(node, blobs, set(attr_paths), report)
        await _check_previews(node, good, listing.sidecars, report)
        await _fix_catalog(node, good, report)
        report.finished_at = datetime.now(UTC)
        result = report.as_dict()
        node.maintenance.reconcile_last = {
            k: result[k] for k in ("started_at", "finished_at", "files_checked", "summary")
        }
        return result


async def _check_copy(
    node: SEState, path: str, blob_size: int | None, deep: bool, report: Report
) -> Attr | None:
    try:
        raw = await asyncio.to_thread(node.backend.read_attr, path)
    except FileNotFoundError:
        return None  # removed since the walk (GC, a delete's rename): nothing to judge
    try:
        attr = decode(raw)
    except BadAttr as exc:
        moved = await node.store.quarantine(
            path, None, f"bad_attr: {exc}", still_bad=lambda: _attr_still_bad(node, path)
        )
        if moved is not None:
            report.add("bad_attr", path, "quarantined", moved.file_id or _file_id_of(raw))
        return None
    kind = None
    if blob_size is None:
        kind = "missing_blob"
    elif blob_size != attr.size:
        kind = "size_mismatch"
    elif deep and not await blob_matches(node.backend, path, attr):  # bit-rot, else SHA-256
        kind = "checksum_mismatch"
    if kind is None:
        return attr
    damage = kind

    async def still_bad() -> bool:
        # The walk is a snapshot: an upload may have landed (or a copy changed) since.
        # Judged again here, under the file's lock, from what is stored now.
        return await _still_damaged(node, path, attr, damage)

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
        decode(raw)
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


async def _check_orphans(
    node: SEState, blobs: dict[str, int], attr_paths: set[str], report: Report
) -> None:
    for path in sorted(set(blobs) - attr_paths):
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
    node: SEState, good: dict[str, Attr], sidecars: dict[str, int], report: Report
) -> None:
    """Preview sidecars (issue 16) against the attrs that name them.

    - An attr naming a sidecar that is missing or of the wrong length: the entry is
      dropped from the attr (and so from the catalog) so the worker makes it again; in
      a mode that allows no update (ro, ar) it is reported only.
    - A sidecar no attr names (a write cut short, a replaced one, the copy gone or
      quarantined): removed. It is derived data, never the reason to quarantine a file.
    """
    named: set[str] = set()
    for file_id, attr in list(good.items()):
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
                good[file_id] = now
                report.add("missing_preview", path, "dropped_from_attr", file_id)
    for path in sorted(set(sidecars) - named):
        if await node.store.remove_orphan_sidecar(path):
            report.add("orphaned_preview", path, "removed")


async def _fix_catalog(node: SEState, good: dict[str, Attr], report: Report) -> None:
    repo = node.catalog.repo
    if repo is None:
        report.catalog = {"checked": False, "reason": "no catalog configured"}
        return
    try:
        rows = await repo.fingerprints()
        missing = [a for fid, a in good.items() if fid not in rows]
        stale = [
            a
            for fid, a in good.items()
            if fid in rows and (rows[fid][0] != a.meta_checksum or rows[fid][1])
        ]
        extra = []
        for fid, (_, quarantined) in rows.items():
            # Keep marked rows (they record the quarantine); re-check the rest, since an
            # upload may have landed after the walk.
            if fid not in good and not quarantined and await node.find_attr(fid) is None:
                extra.append(fid)
        refused = await repo.force_upsert(missing + stale)  # rows refused for their data
        await node.catalog.refused.retain(good.keys())
        for fid in extra:
            await repo.delete(fid)
    except CATALOG_ERRORS as exc:
        report.catalog = {"checked": False, "reason": f"catalog unreachable: {safe_reason(exc)}"}
        return
    report.catalog = {
        "checked": True,
        "inserted": len([a for a in missing if a.file_id not in refused]),
        "updated": len([a for a in stale if a.file_id not in refused]),
        "removed": len(extra),
        "refused": len(refused),
        "refused_file_ids": sorted(refused)[:100],
    }
