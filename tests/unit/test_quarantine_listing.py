"""The SE's quarantine listing on the memory backend: a page describes only its own
items (the rest is counted, never read), in one stable order; item ids round-trip and
refuse what the SE could not have made."""

from __future__ import annotations

import pytest

from artstore.common.pagination import PageParams
from artstore.storage_element.backends.memory import MemoryBackend
from artstore.storage_element.backends.quarantine_entries import (
    BadItem,
    entry_of,
    info_document,
    item_of,
    split_entry,
)
from artstore.storage_element.layout import ATTR_SUFFIX
from artstore.storage_element.maintenance.quarantine import _page_sync

N = 2000


def filled() -> tuple[MemoryBackend, list[str]]:
    backend = MemoryBackend()
    entries = []
    for i in range(N):
        entry = f"2026/12/03/10/f{i:05d}_u_20261203T100000_0000{i:04x}.20261203T101010{i:06d}"
        path, at = split_entry(entry)
        backend.quarantined[f"quarantine/{entry}"] = b"x" * 10
        backend.quarantined[f"quarantine/{entry}{ATTR_SUFFIX}"] = b"{}"
        backend.quarantine_info[entry] = info_document(None, path, f"reason {i}", at)
        entries.append(entry)
    return backend, sorted(entries)


def test_a_page_reads_only_its_own_items() -> None:
    backend, entries = filled()
    reads: list[str] = []
    real = backend.read_quarantined

    def counted(entry: str, suffix: str) -> bytes | None:
        reads.append(entry)
        return real(entry, suffix)

    backend.read_quarantined = counted  # type: ignore[method-assign]
    items, total = _page_sync(backend, PageParams(limit=10, offset=1500))
    assert total == N
    assert [entry_of(i.item) for i in items] == entries[1500:1510]
    assert sorted(set(reads)) == entries[1500:1510]  # the other 1,990 were only counted
    assert [i.reason for i in items] == [f"reason {int(e[15:20])}" for e in entries[1500:1510]]
    assert all(i.size == 10 + 2 + len(backend.quarantine_info[e]) for i, e in
               zip(items, entries[1500:1510], strict=True))  # fmt: skip
    assert _page_sync(backend, PageParams(limit=10, offset=N)) == ([], N)


def test_item_ids_round_trip_and_refuse_the_rest() -> None:
    entry = "2026/12/03/10/name_ü_20261203T100000_abcd1234.pdf.20261203T101010123456"
    assert entry_of(item_of(entry)) == entry
    for bad in (
        item_of("../x.20261203T101010123456"),
        item_of("2026/12/03/10/x"),
        item_of("2026//x.20261203T101010123456"),
        item_of(entry) + "==",
        "",
        "ab/cd",
        "A" * 1401,
    ):
        with pytest.raises(BadItem):
            entry_of(bad)
