"""The walk GC, reconcile and scrub share (issue 19): the backend's objects, folder by
folder, as copies (a storage path with its attr, blob and preview sidecars), in
storage-path order and in chunks of bounded size.

Nothing is held but one folder's listing (an hour of uploads) and one chunk. The
generator blocks (it lists the backend): callers advance it inside the one
``asyncio.to_thread`` call that also reads the chunk's attrs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from artstore.storage_element.attr.model import ATTR_MAX_BYTES
from artstore.storage_element.backends.base import Backend
from artstore.storage_element.backends.local import LocalBackend
from artstore.storage_element.layout import ATTR_SUFFIX, preview_owner

Reader = Callable[[str], bytes]


@dataclass(slots=True)
class Copy:
    """What is stored under one storage path. ``blob`` is its size (None: no blob, or
    sizes not asked for on local disk: see ``has_blob``)."""

    path: str
    attr: bool = False
    has_blob: bool = False
    blob: int | None = None
    sidecars: dict[str, int | None] = field(default_factory=dict)  # path -> size


def _copies(folder: str, entries: list[tuple[str, int | None]]) -> list[Copy]:
    prefix = f"{folder}/" if folder else ""
    found: dict[str, Copy] = {}
    for name, size in entries:
        rel = prefix + name
        if rel.endswith(ATTR_SUFFIX):
            path = rel[: -len(ATTR_SUFFIX)]
            copy = found.get(path) or found.setdefault(path, Copy(path))
            copy.attr = True
            continue
        owner = preview_owner(rel)
        if owner is not None:
            copy = found.get(owner[0]) or found.setdefault(owner[0], Copy(owner[0]))
            copy.sidecars[rel] = size
            continue
        copy = found.get(rel) or found.setdefault(rel, Copy(rel))
        copy.has_blob, copy.blob = True, size
    # Sorted by path (first-seen order is the same but for names that prefix others).
    return sorted(found.values(), key=lambda c: c.path)


def copies(
    backend: Backend, *, chunk: int, start_after: str = "", sizes: bool = True
) -> Iterator[list[Copy]]:
    """Lists of at most ``chunk`` copies whose storage path is greater than
    ``start_after``, in storage-path order; a copy's objects are never split."""
    batch: list[Copy] = []
    for folder, entries in backend.walk_folders(start_after, sizes):
        for copy in _copies(folder, entries):
            if copy.path <= start_after:
                continue  # its attr or a sidecar sorted after the resume point
            batch.append(copy)
            if len(batch) >= chunk:
                yield batch
                batch = []
    if batch:
        yield batch


def attr_reader(backend: Backend) -> Reader:
    """How to read the attr of a storage path the walk found. On local disk, straight
    from its path (one open, one read; ``read_attr`` re-checks the path as if it came
    from an attr, which cost more than decoding). At most one byte over the limit is
    read: enough for ``decode`` to refuse an oversized attr. FileNotFoundError when
    it is gone."""
    if not isinstance(backend, LocalBackend):
        return backend.read_attr
    root = str(backend.layout.files_dir) + os.sep

    def read(storage_path: str) -> bytes:
        fd = os.open(root + storage_path + ATTR_SUFFIX, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.read(fd, ATTR_MAX_BYTES + 1)
        finally:
            os.close(fd)

    return read
