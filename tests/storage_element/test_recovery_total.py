"""Recovery is total (issue 11, item 1): journal records that cannot be applied are set
aside with their reason, and a real SE process still starts and recovers the rest.

The bad records are written by hand into a journal segment, as a bug, a crash of an older
version or an edited file could leave them: a storage path the filesystem refuses (a
Cyrillic name of 300 bytes, ENAMETOOLONG), one with ``..``, a ``begin`` whose data is not
an object, and an upload whose hour folder vanished (nothing to undo: rolled back).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from artstore.storage_element.faults import CRASH_EXIT_CODE
from artstore.storage_element.wal.records import frame, list_segments, segment_name
from tests.conftest import SEFactory
from tests.support.se import StorageElementUnderTest

PAYLOAD_A = os.urandom(2000)
PAYLOAD_B = os.urandom(3000)
LONG_NAME = "ж" * 150 + "_u_20260101T000000_aaaaaaaa.txt"  # 331 bytes in one component


def _begin(txn: str, data: object, kind: str = "upload") -> dict[str, object]:
    return {"op": "begin", "txn": txn, "kind": kind, "data": data, "at": "2026-01-01T00:00:00Z"}


def _append_segment(wal: Path, *records: dict[str, object]) -> None:
    """A segment after the last one, as the next start of an SE would have written it."""
    last = list_segments(wal)[-1][0]
    (wal / segment_name(last + 1)).write_bytes(b"".join(frame(r) for r in records))


def _status(se: StorageElementUnderTest) -> dict[str, object]:
    with se.client() as c:
        r = c.get("/api/v1/maintenance/status")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_unappliable_records_are_set_aside_and_the_rest_recovered(
    se_factory: SEFactory,
) -> None:
    se = se_factory("rw")
    with se.client() as c:
        a = c.post("/api/v1/files", content=PAYLOAD_A, params={"filename": "a.bin"})
        assert a.status_code == 201, a.text
    # A good interrupted change for recovery to finish: an upload that died at its commit
    # point (attr published, no outcome journaled) must be rolled forward.
    se.restart(SE_CRASH_AT="upload.after_attr_rename")
    with se.client() as c, pytest.raises(httpx.TransportError):
        c.post("/api/v1/files", content=PAYLOAD_B, params={"filename": "b.bin"})
    assert se.process.wait_exit() == CRASH_EXIT_CODE, se.process.log()

    # In an hour folder that exists: there the name itself is what the filesystem refuses.
    [attr] = [a for a in se.attrs() if a.name.startswith("a_")]
    if se.on_s3:
        hour = attr.key[len(se.s3_prefix) :].rsplit("/", 1)[0]
    else:
        hour = str(attr.parent.relative_to(se.data_dir / "files"))
    wal = se.data_dir / "wal"
    _append_segment(
        wal,
        _begin(
            "long",
            {
                "file_id": "11111111-1111-4111-8111-111111111111",
                "storage_path": f"{hour}/{LONG_NAME}",
            },
        ),
        _begin(
            "dots",
            {
                "file_id": "22222222-2222-4222-8222-222222222222",
                "storage_path": "2026/../../../../etc/passwd",
            },
        ),
        _begin("notdict", "not an object"),
        _begin(
            "gone",
            {
                "file_id": "33333333-3333-4333-8333-333333333333",
                "storage_path": "2031/05/05/05/gone_u_20310505T050505_cccccccc.txt",
            },
        ),
    )
    se.start(SE_CRASH_AT="")  # today: ENAMETOOLONG/ValueError and the SE exits

    # A 300-byte name is refused by a local filesystem; a bucket takes keys up to 1024 bytes.
    expected = {"dots", "notdict"} | ({"long"} if not se.on_s3 else set())
    recovery = _status(se)["recovery"]
    assert isinstance(recovery, dict)
    assert recovery["set_aside"] == recovery["set_aside_total"] == len(expected), recovery
    assert {e["txn"] for e in recovery["last"]} == expected
    reasons = {e["txn"]: e["reason"] for e in recovery["last"]}
    assert "unsafe storage path" in reasons["dots"]
    if "long" in expected:
        assert "ENAMETOOLONG" in reasons["long"]
    saved = (wal / "set-aside.jsonl").read_text().splitlines()
    assert len(saved) == len(expected)
    metrics = httpx.get(f"{se.url}/metrics").text
    assert f"artstore_storage_element_recovery_set_aside {float(len(expected))}" in metrics
    ready = httpx.get(f"{se.url}/health/ready").json()["checks"]
    assert ready["wal"]["status"] == ready["recovery"]["status"] == "ok", ready

    with se.client() as c:
        items = c.get("/api/v1/files").json()["items"]
        by_size = {item["size"]: item["file_id"] for item in items}
        assert set(by_size) == {len(PAYLOAD_A), len(PAYLOAD_B)}, items
        for payload in (PAYLOAD_A, PAYLOAD_B):
            got = c.get(f"/api/v1/files/{by_size[len(payload)]}/download")
            assert got.status_code == 200 and got.content == payload
        again = c.post("/api/v1/files", content=b"after", params={"filename": "c.txt"})
        assert again.status_code == 201, again.text
    assert se.tmp_entries() == [] and se.orphan_blobs() == []

    # Set aside is for good: the next start neither retries nor re-counts them.
    se.restart()
    recovery = _status(se)["recovery"]
    assert isinstance(recovery, dict)
    assert recovery["set_aside"] == 0 and recovery["set_aside_total"] == len(expected)
    assert recovery["last"] == []
    assert (wal / "set-aside.jsonl").read_text().splitlines() == saved
