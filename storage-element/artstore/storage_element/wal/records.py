"""Journal framing: ``<u32 length><u32 crc32><payload>``; payload is one JSON object.

A reader stops at the first record that is short or fails its CRC: that is a torn
tail from a crash mid-append, and nothing after it was ever acknowledged.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HEADER = struct.Struct("<II")
MAX_RECORD = 1 << 20
SEGMENT_SUFFIX = ".wal"
# Records recovery could not apply, one JSON object a line (never a segment: not replayed).
SET_ASIDE_FILE = "set-aside.jsonl"


def frame(payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) > MAX_RECORD:
        raise ValueError("journal record too large")
    return HEADER.pack(len(body), zlib.crc32(body)) + body


def segment_name(number: int) -> str:
    return f"{number:016d}{SEGMENT_SUFFIX}"


def list_segments(wal_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for entry in os.scandir(wal_dir):
        name = entry.name
        if name.endswith(SEGMENT_SUFFIX) and name[: -len(SEGMENT_SUFFIX)].isdigit():
            found.append((int(name[: -len(SEGMENT_SUFFIX)]), Path(entry.path)))
    return sorted(found)


def read_segment(path: Path) -> tuple[list[Any], bool]:
    """(records, torn): the valid records up to the first damaged one.

    A record is whatever JSON its frame holds: normally an object, but recovery must
    not trust that (a hand-written or buggy record is set aside, not crashed on)."""
    data = path.read_bytes()
    records: list[Any] = []
    pos = 0
    while pos < len(data):
        if pos + HEADER.size > len(data):
            return records, True
        length, crc = HEADER.unpack_from(data, pos)
        start, end = pos + HEADER.size, pos + HEADER.size + length
        if length > MAX_RECORD or end > len(data):
            return records, True
        body = data[start:end]
        if zlib.crc32(body) != crc:
            return records, True
        try:
            records.append(json.loads(body))
        except ValueError:
            return records, True
        pos = end
    return records, False


def read_all(wal_dir: Path) -> Iterator[tuple[int, Any]]:
    """Every valid record of every segment, oldest first, with its segment number.

    A torn record ends its segment only: later segments were started after a
    restart and are read on.
    """
    for number, path in list_segments(wal_dir):
        records, _torn = read_segment(path)
        for rec in records:
            yield number, rec
