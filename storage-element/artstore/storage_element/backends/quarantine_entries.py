"""How a quarantined entry is named on every backend, and its opaque item id.

An entry is ``<storage path>.<stamp>`` below ``quarantine/``: the blob under that name,
its attr at ``<entry>.attr.json`` and what moved it there at ``<entry>.info.json``
(reason, file id; architecture §5.5). The stamp is when it was moved (UTC). An item id
is the entry in URL-safe base64: opaque to callers, and checked back into an entry that
cannot leave ``quarantine/`` before any backend sees it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from artstore.storage_element.layout import ATTR_SUFFIX, safe_relative

INFO_SUFFIX = ".info.json"  # as long as ATTR_SUFFIX: layout's name budget holds
STAMP_FORMAT = "%Y%m%dT%H%M%S%f"
_ENTRY = re.compile(r"^(?P<path>.+)\.(?P<stamp>\d{8}T\d{12})$")
_ITEM = re.compile(r"^[A-Za-z0-9_-]+$")
# The longest entry (a 1024-byte S3 key) in base64: bounds what is decoded at all.
MAX_ITEM_CHARS = 1400


class BadItem(ValueError):
    """An item id that is not one this SE could have made."""


@dataclass(frozen=True)
class QuarantinedEntry:
    """One entry as listed: its name and the sizes of what it holds."""

    entry: str
    blob_size: int | None = None  # None: no blob (a damaged attr alone)
    attr_size: int | None = None
    info_size: int | None = None

    @property
    def has_info(self) -> bool:
        return self.info_size is not None

    @property
    def size(self) -> int:
        """Every byte the entry holds: what a purge frees."""
        return sum(n or 0 for n in (self.blob_size, self.attr_size, self.info_size))

    @property
    def storage_path(self) -> str:
        return split_entry(self.entry)[0]

    @property
    def quarantined_at(self) -> datetime:
        return split_entry(self.entry)[1]


def new_entry(storage_path: str, at: datetime | None = None) -> str:
    return f"{safe_relative(storage_path)}.{(at or datetime.now(UTC)).strftime(STAMP_FORMAT)}"


def split_entry(entry: str) -> tuple[str, datetime]:
    """(storage path, when) of an entry; BadItem when it is not an entry's name."""
    m = _ENTRY.match(entry)
    if m is None:
        raise BadItem(f"not a quarantine entry: {entry!r}")
    try:
        path = safe_relative(m["path"])
        at = datetime.strptime(m["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise BadItem(str(exc)) from None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise BadItem("control characters in an entry")
    return path, at


def part_of(name: str) -> tuple[str, str] | None:
    """(entry, suffix) of one stored name below ``quarantine/``; None: not an entry's."""
    for suffix in (ATTR_SUFFIX, INFO_SUFFIX, ""):
        if suffix and not name.endswith(suffix):
            continue
        entry = name[: len(name) - len(suffix)] if suffix else name
        try:
            split_entry(entry)
        except BadItem:
            continue
        return entry, suffix
    return None


def group(names: Iterable[tuple[str, int]]) -> Iterator[QuarantinedEntry]:
    """Entries from (name, size) pairs sorted so that an entry's parts are adjacent
    (each backend lists in such an order); names that are no entry's are skipped."""
    current: dict[str, Any] | None = None
    for name, size in names:
        parsed = part_of(name)
        if parsed is None:
            continue
        entry, suffix = parsed
        if current is None or current["entry"] != entry:
            if current is not None:
                yield QuarantinedEntry(**current)
            current = {"entry": entry}
        if suffix == ATTR_SUFFIX:
            current["attr_size"] = size
        elif suffix == INFO_SUFFIX:
            current["info_size"] = size
        else:
            current["blob_size"] = size
    if current is not None:
        yield QuarantinedEntry(**current)


def item_of(entry: str) -> str:
    return base64.urlsafe_b64encode(entry.encode()).decode().rstrip("=")


def entry_of(item: str) -> str:
    """The entry an item id names; BadItem for anything this SE could not have made
    (bad base64, not UTF-8, ``..`` or an absolute path, no stamp)."""
    if not (0 < len(item) <= MAX_ITEM_CHARS) or _ITEM.match(item) is None:
        raise BadItem("an item id is URL-safe base64")
    try:
        raw = base64.urlsafe_b64decode(item + "=" * (-len(item) % 4))
        entry = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadItem("an item id is URL-safe base64 of an entry") from None
    if item_of(entry) != item:  # one spelling per entry
        raise BadItem("not a canonical item id")
    split_entry(entry)
    return entry


def info_document(file_id: str | None, storage_path: str, reason: str, at: datetime) -> bytes:
    return json.dumps(
        {
            "file_id": file_id,
            "storage_path": storage_path,
            "reason": reason,
            "quarantined_at": at.isoformat(),
        }
    ).encode()


def read_info(raw: bytes | None) -> dict[str, Any]:
    """The info document's fields, ``{}`` when missing or unreadable (an entry moved
    before reasons were recorded, or one whose info a crash cut short)."""
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def file_id_in(document: dict[str, Any]) -> str | None:
    """The ``file_id`` a JSON document (an info record, an attr) names, when it is a
    UUID: a damaged attr may still say it, or say nonsense."""
    value = document.get("file_id")
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
