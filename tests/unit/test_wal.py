"""The journal on its own: framing, torn tails, group commit, checkpoints, recovery rules."""

from __future__ import annotations

import asyncio
import errno
import json
import os
from pathlib import Path

import pytest

from artstore.storage_element.attr.model import Attr
from artstore.storage_element.backends.local import LocalBackend
from artstore.storage_element.layout import Layout
from artstore.storage_element.wal.journal import Journal, JournalFailed
from artstore.storage_element.wal.records import frame, list_segments, read_all, read_segment
from artstore.storage_element.wal.recovery import resolve


def test_frames_round_trip_and_torn_tail_is_ignored(tmp_path: Path) -> None:
    seg = tmp_path / "0000000000000001.wal"
    records = [{"op": "begin", "txn": str(i)} for i in range(3)]
    data = b"".join(frame(r) for r in records)
    seg.write_bytes(data + frame({"op": "commit", "txn": "x"})[:-3])
    got, torn = read_segment(seg)
    assert got == records and torn


def test_crc_mismatch_ends_the_segment(tmp_path: Path) -> None:
    seg = tmp_path / "0000000000000001.wal"
    first, second = (
        frame({"op": "begin", "txn": "a"}),
        bytearray(frame({"op": "begin", "txn": "b"})),
    )
    second[-2] ^= 0xFF  # flip a payload bit
    seg.write_bytes(first + bytes(second) + frame({"op": "begin", "txn": "c"}))
    got, torn = read_segment(seg)
    assert [r["txn"] for r in got] == ["a"] and torn


def test_records_after_a_torn_segment_are_read_from_later_segments(tmp_path: Path) -> None:
    (tmp_path / "0000000000000001.wal").write_bytes(frame({"op": "begin", "txn": "a"}) + b"\x01")
    (tmp_path / "0000000000000002.wal").write_bytes(frame({"op": "commit", "txn": "a"}))
    assert [r["op"] for _, r in read_all(tmp_path)] == ["begin", "commit"]


async def test_group_commit_shares_fsyncs(tmp_path: Path) -> None:
    journal = Journal(tmp_path, 16 * 1024 * 1024)
    journal.open_new_segment()
    txns = await asyncio.gather(*(journal.begin("upload", {"n": i}) for i in range(200)))
    await journal.close()
    assert len(set(txns)) == 200
    assert journal.fsyncs < 200  # concurrent begins rode on shared flushes
    begun = [r["txn"] for _, r in read_all(tmp_path) if r["op"] == "begin"]
    assert sorted(begun) == sorted(txns)


async def test_checkpoint_keeps_segments_with_open_transactions(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=300)  # tiny: a few records per segment
    journal.open_new_segment()
    open_txn = await journal.begin("upload", {"file_id": "keep"})
    for i in range(20):
        t = await journal.begin("upload", {"file_id": str(i)})
        await journal.commit(t, owes_catalog=False)
    await journal.flush()
    assert len(list_segments(tmp_path)) > 3
    await journal.checkpoint()
    remaining = [r for _, r in read_all(tmp_path)]
    assert any(r.get("txn") == open_txn and r["op"] == "begin" for r in remaining)

    await journal.commit(open_txn, owes_catalog=False)
    await journal.checkpoint()
    await journal.close()
    assert len(list_segments(tmp_path)) == 1  # only the current segment is left
    assert all(r.get("txn") != open_txn or r["op"] != "begin" for _, r in read_all(tmp_path))


def _attr(path: str, version: int) -> bytes:
    return Attr(
        file_id="7f1c1f0e-0000-4000-8000-000000000001",
        storage_path=path,
        original_filename="a.txt",
        content_type="text/plain",
        size=1,
        checksum="sha256:" + "0" * 64,
        uploaded_by="u",
        uploaded_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        version=version,
        status="active",
        retention_policy="permanent",
        ttl_days=None,
        expires_at=None,
        description="",
        tags=[],
        metadata={},
    ).encode()


def _journal(wal: Path, *records: dict[str, object]) -> None:
    wal.mkdir(parents=True, exist_ok=True)
    (wal / "0000000000000001.wal").write_bytes(b"".join(frame(r) for r in records))


def test_recovery_rolls_uploads_forward_or_back(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data", tmp_path / "wal")
    backend = LocalBackend(layout)
    backend.prepare()
    hour = layout.files_dir / "2026/01/01/00"
    hour.mkdir(parents=True)
    (hour / "done_u_20260101T000000_aaaaaaaa.txt").write_bytes(b"x")
    (hour / "done_u_20260101T000000_aaaaaaaa.txt.attr.json").write_bytes(
        _attr("2026/01/01/00/done_u_20260101T000000_aaaaaaaa.txt", 1)
    )
    (hour / "half_u_20260101T000000_bbbbbbbb.txt").write_bytes(b"y")  # renamed, attr never was
    (layout.tmp_dir / "t1.blob").write_bytes(b"partial")
    _journal(
        layout.wal_dir,
        {
            "op": "begin",
            "txn": "t1",
            "kind": "upload",
            "data": {
                "file_id": "f1",
                "storage_path": "2026/01/01/00/done_u_20260101T000000_aaaaaaaa.txt",
            },
        },
        {
            "op": "begin",
            "txn": "t2",
            "kind": "upload",
            "data": {
                "file_id": "f2",
                "storage_path": "2026/01/01/00/half_u_20260101T000000_bbbbbbbb.txt",
            },
        },
        {
            "op": "begin",
            "txn": "t3",
            "kind": "upload",
            "data": {"file_id": "f3", "storage_path": "x/y"},
        },
        {"op": "abort", "txn": "t3"},
    )
    report = resolve(backend, layout.wal_dir)
    assert report.rolled_forward == ["t1"] and report.rolled_back == ["t2"]
    assert report.owed == {"t1": "f1"}
    assert not (hour / "half_u_20260101T000000_bbbbbbbb.txt").exists()
    assert (hour / "done_u_20260101T000000_aaaaaaaa.txt").exists()
    assert list(layout.tmp_dir.iterdir()) == []


def test_recovery_decides_updates_by_attr_version(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data", tmp_path / "wal")
    backend = LocalBackend(layout)
    backend.prepare()
    path = "2026/01/01/00/a_u_20260101T000000_cccccccc.txt"
    (layout.files_dir / "2026/01/01/00").mkdir(parents=True)
    layout.attr_path(path).write_bytes(_attr(path, 2))
    _journal(
        layout.wal_dir,
        {
            "op": "begin",
            "txn": "u2",
            "kind": "update",
            "data": {"file_id": "f", "storage_path": path, "version": 2},
        },
        {
            "op": "begin",
            "txn": "u3",
            "kind": "update",
            "data": {"file_id": "f", "storage_path": path, "version": 3},
        },
        {
            "op": "begin",
            "txn": "c1",
            "kind": "upload",
            "data": {"file_id": "g", "storage_path": path},
        },
        {"op": "commit", "txn": "c1"},
        {"op": "catalog_done", "txn": "c1"},
    )
    report = resolve(backend, layout.wal_dir)
    assert report.rolled_forward == ["u2"] and report.rolled_back == ["u3"]
    assert report.owed == {"u2": "f"}  # c1 reached the catalog; nothing owed for it
    assert json.loads(layout.attr_path(path).read_bytes())["version"] == 2


def test_recovery_sets_aside_what_it_cannot_apply_and_recovers_the_rest(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data", tmp_path / "wal")
    backend = LocalBackend(layout)
    backend.prepare()
    done = "2026/01/01/00/done_u_20260101T000000_aaaaaaaa.txt"
    (layout.files_dir / "2026/01/01/00").mkdir(parents=True)
    layout.blob_path(done).write_bytes(b"x")
    layout.attr_path(done).write_bytes(_attr(done, 1))
    (layout.files_dir / "2026/01/02").write_bytes(b"a file where a folder should be")
    too_long = "2026/01/01/00/" + "я" * 150 + ".txt"  # 304 bytes in one component

    def begin(txn: str, data: object, kind: object = "upload") -> dict[str, object]:
        return {"op": "begin", "txn": txn, "kind": kind, "data": data}

    _journal(
        layout.wal_dir,
        begin("long", {"file_id": "f1", "storage_path": too_long}),
        begin("good", {"file_id": "f2", "storage_path": done}),
        begin("dots", {"file_id": "f3", "storage_path": "2026/../../../etc/passwd"}),
        begin("notdict", ["file_id", "f4"]),
        ["not", "an", "object"],  # type: ignore[arg-type]
        begin("nokind", {"file_id": "f5"}, kind=7),
        {"op": "commit", "txn": 42},
        begin("ver", {"file_id": "f6", "storage_path": done, "version": "2"}, kind="update"),
        begin("notdir", {"file_id": "f7", "storage_path": "2026/01/02/00/x.txt"}),
        begin("gone", {"file_id": "f8", "storage_path": "2031/05/05/05/gone.txt"}),
        {"op": "owed", "txn": "owed", "file_id": None},
        {"op": "flush"},
    )
    report = resolve(backend, layout.wal_dir)

    assert report.rolled_forward == ["good"] and report.owed == {"good": "f2"}
    assert report.rolled_back == ["gone"]  # a vanished folder: nothing to undo
    reasons = {e["txn"]: e["reason"] for e in report.set_aside}
    assert set(reasons) == {"long", "dots", "notdict", None, "nokind", "ver", "notdir", "owed"}
    assert len(report.set_aside) == 9  # two records without a usable txn
    assert "ENAMETOOLONG" in reasons["long"]
    assert "unsafe storage path" in reasons["dots"]
    assert "ENOTDIR" in reasons["notdir"]
    assert reasons["notdict"] == "malformed record: begin record whose data is not an object"
    saved = (layout.wal_dir / "set-aside.jsonl").read_text().splitlines()
    assert report.set_aside_total == len(saved) == 9
    first = json.loads(saved[0])
    assert first["record"]["data"]["storage_path"] == too_long and first["segment"] == 1

    # Set aside means never retried: a journal without them leaves the file as it was.
    for _, seg in list_segments(layout.wal_dir):
        seg.unlink()
    again = resolve(backend, layout.wal_dir)
    assert again.set_aside == [] and again.set_aside_total == 9


class _FailingOS:
    """Make the journal's next fsync (or write) fail, and count every later attempt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, call: str, partial: bool = False) -> None:
        self.calls = 0
        self.armed = False
        real = getattr(os, call)

        def fake(fd: int, *args: object) -> object:
            if not self.armed:
                return real(fd, *args)
            self.calls += 1
            if partial and self.calls == 1:
                data = bytes(args[0])  # type: ignore[call-overload]
                real(fd, data[: len(data) // 2])  # half a record reaches the file
            raise OSError(errno.EIO if call == "fsync" else errno.ENOSPC, "injected")

        monkeypatch.setattr(os, call, fake)  # the journal's module uses os.write/os.fsync


@pytest.mark.parametrize(("call", "partial"), [("fsync", False), ("write", True)])
async def test_journal_fails_stop_after_a_failed_write_or_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, partial: bool
) -> None:
    journal = Journal(tmp_path, 16 * 1024 * 1024)
    journal.open_new_segment()
    kept = await journal.begin("upload", {"file_id": "kept", "storage_path": "a/b"})
    await journal.commit(kept, owes_catalog=False)
    await journal.flush()
    failing = _FailingOS(monkeypatch, call, partial)
    failing.armed = True

    batch = await asyncio.gather(
        *(journal.begin("upload", {"file_id": str(i)}) for i in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(r, JournalFailed) for r in batch), batch
    assert journal.failed and failing.calls == 1  # one attempt for the whole batch
    [segment] = list_segments(tmp_path)
    size = segment[1].stat().st_size

    with pytest.raises(JournalFailed) as refused:
        await journal.begin("upload", {"file_id": "later"})
    assert refused.value.status == 503 and refused.value.code == "JOURNAL_FAILED"
    with pytest.raises(JournalFailed):
        await journal.commit(kept, owes_catalog=False)
    await journal.abort("whatever")  # undo paths must not fail on it
    await journal.catalog_done(kept)
    assert await journal.checkpoint() == 0
    await journal.close()
    assert failing.calls == 1  # never retried: no fsync, no write after the failure
    assert segment[1].stat().st_size == size

    # What was acknowledged is read back. After a short write the torn tail ends the
    # segment; after a failed fsync the page cache may still hold the batch: begins of
    # changes never acknowledged, which recovery rolls back like any interrupted one.
    ops = [r["op"] for _, r in read_all(tmp_path)]
    assert ops[:3] == ["begin", "commit", "flush"]
    assert set(ops[3:]) <= {"begin"}
    assert len(ops[3:]) == 5 if not partial else len(ops[3:]) < 5
    assert read_segment(segment[1])[1] is partial  # torn only by the short write
