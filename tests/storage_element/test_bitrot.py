"""The bit-rot hash (issue 19): every stored copy's attr carries an xxHash3-128 of its
blob besides the SHA-256 checksum; whole-file downloads and the scrubber verify with it,
and attrs without it (written before it existed) still verify with SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import xxhash

from artstore.storage_element.attr.model import Attr, BitrotRef, decode
from tests.conftest import SEFactory
from tests.support.se import StorageElementUnderTest

Q = "/api/v1/maintenance/quarantine"
MiB = 1024 * 1024

pytestmark = pytest.mark.local_only  # the tests edit blobs and attrs on the local disk


def _upload(se: StorageElementUnderTest, data: bytes, name: str = "b.bin") -> dict[str, Any]:
    with se.client() as c:
        r = c.post("/api/v1/files", content=data, params={"filename": name})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _attr_file(se: StorageElementUnderTest, file_id: str) -> Path:
    part = file_id.replace("-", "")[:8]
    paths = [p for p in se.attrs() if part in p.name]
    assert len(paths) == 1, paths
    return Path(paths[0])


def _blob_file(se: StorageElementUnderTest, file_id: str) -> Path:
    part = file_id.replace("-", "")[:8]
    paths = [p for p in se.blobs() if part in p.name]
    assert len(paths) == 1, paths
    return Path(paths[0])


def _rewrite(se: StorageElementUnderTest, file_id: str, **changes: Any) -> Attr:
    """Write the file's attr again with ``changes``, properly sealed (a trusted attr)."""
    path = _attr_file(se, file_id)
    attr = decode(path.read_bytes()).model_copy(update=changes)
    path.write_bytes(attr.encode())
    return attr


def _flip(se: StorageElementUnderTest, file_id: str) -> None:
    blob = _blob_file(se, file_id)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    blob.write_bytes(bytes(data))


def _download(se: StorageElementUnderTest, file_id: str) -> bytes:
    with se.client() as c:
        r = c.get(f"/api/v1/files/{file_id}/download")
    assert r.status_code == 200, r.text
    return r.content


def _cut_short(se: StorageElementUnderTest, file_id: str) -> None:
    with se.client() as c, pytest.raises(httpx.HTTPError):  # never silently bad bytes
        c.get(f"/api/v1/files/{file_id}/download")


def _quarantined(se: StorageElementUnderTest) -> dict[str, str]:
    with se.client() as c:
        r = c.get(Q)
    assert r.status_code == 200, r.text
    return {i["file_id"]: i["reason"] for i in r.json()["items"]}


@pytest.mark.parametrize("size", [3000, 3 * MiB + 17])  # in memory (group commit) / streamed
def test_upload_records_the_bitrot_hash_beside_sha256(se_factory: SEFactory, size: int) -> None:
    se = se_factory("rw")
    data = os.urandom(size)
    meta = _upload(se, data)
    # The contract clients see is unchanged: SHA-256, no bit-rot field.
    assert meta["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert "bitrot" not in meta
    attr = decode(_attr_file(se, meta["file_id"]).read_bytes())
    assert attr.checksum == meta["checksum"]
    assert attr.bitrot == BitrotRef(alg="xxh3-128", hex=xxhash.xxh3_128_hexdigest(data))
    with se.client() as c:
        r = c.get(f"/api/v1/files/{meta['file_id']}")
        assert r.status_code == 200 and "bitrot" not in r.json()
        r = c.get(f"/api/v1/files/{meta['file_id']}/download")
        assert r.status_code == 200 and r.content == data
        assert r.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        # A metadata update keeps the bit-rot hash (a new attr version of the same blob).
        r = c.patch(f"/api/v1/files/{meta['file_id']}", json={"description": "x"})
        assert r.status_code == 200, r.text
    assert decode(_attr_file(se, meta["file_id"]).read_bytes()).bitrot == attr.bitrot


def test_whole_downloads_verify_with_the_bitrot_hash(se_factory: SEFactory) -> None:
    se = se_factory("rw")
    data = os.urandom(2 * MiB + 5)
    flipped, wrong_sha, wrong_bitrot = (_upload(se, data, f"f{i}.bin") for i in range(3))
    # A flipped bit: the download is cut short and the copy quarantined, as before.
    _flip(se, flipped["file_id"])
    _cut_short(se, flipped["file_id"])
    # Only the bit-rot hash is checked when the attr has one: an attr whose SHA-256 claim
    # is wrong but whose bit-rot hash is right serves its bytes ...
    _rewrite(se, wrong_sha["file_id"], checksum="sha256:" + "0" * 64)
    assert _download(se, wrong_sha["file_id"]) == data
    # ... and one whose bit-rot hash is wrong is judged corrupt, its SHA-256 right.
    _rewrite(se, wrong_bitrot["file_id"], bitrot=BitrotRef(alg="xxh3-128", hex="0" * 32))
    _cut_short(se, wrong_bitrot["file_id"])
    assert _quarantined(se) == {
        flipped["file_id"]: "checksum_mismatch (download)",
        wrong_bitrot["file_id"]: "checksum_mismatch (download)",
    }
    # A range is served as before (not verified: only whole-file downloads are).
    with se.client() as c:
        r = c.get(f"/api/v1/files/{wrong_sha['file_id']}/download", headers={"Range": "bytes=0-9"})
        assert r.status_code == 206 and r.content == data[:10]


def test_attrs_without_the_bitrot_hash_verify_with_sha256(se_factory: SEFactory) -> None:
    se = se_factory("rw")
    data = os.urandom(MiB + 3)
    good, bad = (_upload(se, data, f"old{i}.bin") for i in range(2))
    for meta in (good, bad):
        old = _rewrite(se, meta["file_id"], bitrot=None)  # as written before issue 19
        assert b"bitrot" not in _attr_file(se, meta["file_id"]).read_bytes()
        assert old.checksum == meta["checksum"]
    assert _download(se, good["file_id"]) == data
    _flip(se, bad["file_id"])
    _cut_short(se, bad["file_id"])
    assert _quarantined(se) == {bad["file_id"]: "checksum_mismatch (download)"}


def test_an_edited_bitrot_field_makes_the_attr_untrusted(se_factory: SEFactory) -> None:
    """Edited in place (not re-sealed), the field breaks the attr's meta_checksum: the
    attr is quarantined as a bad attr, its bytes never served."""
    se = se_factory("rw")
    meta = _upload(se, os.urandom(5000))
    path = _attr_file(se, meta["file_id"])
    data = json.loads(path.read_bytes())
    hex_ = data["bitrot"]["hex"]
    data["bitrot"]["hex"] = ("1" if hex_[0] != "1" else "2") + hex_[1:]
    path.write_bytes(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
    with se.client() as c:
        r = c.get(f"/api/v1/files/{meta['file_id']}/download")
    assert r.status_code == 404, r.text
    reasons = _quarantined(se)
    assert list(reasons) == [meta["file_id"]]
    assert reasons[meta["file_id"]].startswith("bad_attr")


def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def test_the_scrubber_verifies_with_the_bitrot_hash_else_sha256(se_factory: SEFactory) -> None:
    se = se_factory("rw", SE_SCRUB_BYTES_PER_SEC="0")  # no scrubbing while edited
    data = os.urandom(4000)
    names = ("flipped", "old_flipped", "wrong_bitrot", "wrong_sha", "old_good", "good")
    ids = {n: _upload(se, data, f"{n}.bin")["file_id"] for n in names}
    se.process.stop()
    _flip(se, ids["flipped"])
    _rewrite(se, ids["old_flipped"], bitrot=None)
    _flip(se, ids["old_flipped"])
    _rewrite(se, ids["wrong_bitrot"], bitrot=BitrotRef(alg="xxh3-128", hex="0" * 32))
    _rewrite(se, ids["wrong_sha"], checksum="sha256:" + "0" * 64)
    _rewrite(se, ids["old_good"], bitrot=None)
    se.start(SE_SCRUB_BYTES_PER_SEC="10000000", SE_SCRUB_PASS_INTERVAL="86400")

    def scrub() -> dict[str, Any]:
        with se.client() as c:
            return dict(c.get("/api/v1/maintenance/status").json()["scrub"])

    _wait(lambda: scrub()["last_pass_at"] is not None)
    assert scrub()["mismatches"] == 3
    assert _quarantined(se) == {
        ids[n]: "checksum_mismatch (scrub)" for n in ("flipped", "old_flipped", "wrong_bitrot")
    }
    for n in ("wrong_sha", "old_good", "good"):  # verified and kept
        assert _download(se, ids[n]) == data
