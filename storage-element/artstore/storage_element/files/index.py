"""In-memory map from a file id to its storage path, built from file names alone.

A storage name ends in ``_<YYYYMMDDTHHMMSS>_<uuid8>[.ext]``, so a directory walk at
start (no attr reads) is enough to find any file's attr later; the attr itself then
confirms the full id.
"""

from __future__ import annotations

import re
from collections import defaultdict

from artstore.storage_element.layout import ATTR_SUFFIX

_TAIL = re.compile(r"_\d{8}T\d{6}_([0-9a-f]{8})(\.[^./]*)?$")


def uuid8_of(storage_path: str) -> str | None:
    m = _TAIL.search(storage_path.rsplit("/", 1)[-1])
    return m.group(1) if m else None


class FileIndex:
    def __init__(self) -> None:
        self._by_prefix: dict[str, set[str]] = defaultdict(set)

    def add(self, storage_path: str) -> None:
        key = uuid8_of(storage_path)
        if key:
            self._by_prefix[key].add(storage_path)

    def discard(self, storage_path: str) -> None:
        key = uuid8_of(storage_path)
        if key and key in self._by_prefix:
            self._by_prefix[key].discard(storage_path)
            if not self._by_prefix[key]:
                del self._by_prefix[key]

    def candidates(self, file_id: str) -> list[str]:
        return sorted(self._by_prefix.get(file_id.replace("-", "")[:8], ()))

    def all_paths(self) -> list[str]:
        return [p for paths in self._by_prefix.values() for p in paths]

    def __len__(self) -> int:
        return sum(len(p) for p in self._by_prefix.values())


def attr_storage_path(relative: str) -> str | None:
    """The storage path an attr file belongs to, or None for a blob."""
    return relative[: -len(ATTR_SUFFIX)] if relative.endswith(ATTR_SUFFIX) else None
