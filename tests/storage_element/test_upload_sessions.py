"""The SE's upload sessions (the store behind the ingester's tus uploads)."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.conftest import SEFactory
from tests.support.se import StorageElementUnderTest


@pytest.mark.local_only
def test_acknowledged_bytes_survive_a_kill(se_factory: SEFactory) -> None:
    se = se_factory("edit")
    data = os.urandom(2_500_000)
    with se.client() as c:
        r = c.post("/api/v1/uploads", json={"length": len(data), "filename": "s.bin"})
        assert r.status_code == 201, r.text
        sid = r.json()["session_id"]
        r = c.patch(f"/api/v1/uploads/{sid}", params={"offset": 0}, content=data[:1_000_000])
        assert r.status_code == 200 and r.json()["offset"] == 1_000_000
    se.process.kill()  # no graceful stop: only what was fsynced counts
    se.start()
    with se.client() as c:
        assert c.get(f"/api/v1/uploads/{sid}").json()["offset"] == 1_000_000
        wrong = c.patch(f"/api/v1/uploads/{sid}", params={"offset": 5}, content=b"x")
        assert wrong.status_code == 409 and wrong.json()["error"]["details"]["offset"] == 1_000_000
        r = c.patch(
            f"/api/v1/uploads/{sid}", params={"offset": 1_000_000}, content=data[1_000_000:]
        )
        assert r.status_code == 200 and r.json()["offset"] == len(data)
        done = c.post(f"/api/v1/uploads/{sid}/complete")
        assert done.status_code == 201, done.text
        assert done.json()["file_id"] == sid
        assert done.json()["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
        again = c.post(f"/api/v1/uploads/{sid}/complete")  # retry-safe
        assert again.status_code == 201 and again.json()["file_id"] == sid
        assert c.get(f"/api/v1/files/{sid}/download").content == data
        assert c.get(f"/api/v1/uploads/{sid}").status_code == 404
    assert not (se.data_dir / "uploads" / sid).exists()
    assert se.tmp_entries() == []


@pytest.mark.local_only
def test_sessions_check_mode_kind_and_owner(se_factory: SEFactory) -> None:
    se = se_factory("edit")
    with se.client() as c:
        kind = c.post("/api/v1/uploads", json={"length": 1, "retention_policy": "permanent"})
        assert kind.status_code == 409 and kind.json()["error"]["code"] == "MODE_NOT_ALLOWED"
        sid = c.post("/api/v1/uploads", json={"length": 3}).json()["session_id"]
        early = c.post(f"/api/v1/uploads/{sid}/complete")
        assert early.status_code == 409, early.text
    with se.client(sub="mallory") as other:
        assert other.get(f"/api/v1/uploads/{sid}").status_code == 403
        assert other.delete(f"/api/v1/uploads/{sid}").status_code == 403
    with se.client(scopes="files:read") as reader:
        assert reader.get(f"/api/v1/uploads/{sid}").status_code == 403
    with se.client() as c:
        assert c.delete(f"/api/v1/uploads/{sid}").status_code == 204
        assert c.get(f"/api/v1/uploads/{sid}").status_code == 404


@pytest.mark.s3_only
def test_s3_backend_refuses_sessions(se_factory: SEFactory) -> None:
    se = se_factory("edit")
    with se.client() as c:
        r = c.post("/api/v1/uploads", json={"length": 10})
    assert r.status_code == 501 and r.json()["error"]["code"] == "NOT_SUPPORTED"


def _digest(name: str, data: bytes) -> str:
    key = {"sha1": "sha", "md5": "md5", "sha256": "sha-256"}[name]
    return f"{key}=:{base64.b64encode(hashlib.new(name, data).digest()).decode()}:"


@pytest.mark.local_only
def test_chunk_digests_sha1_md5_sha256(se_factory: SEFactory) -> None:
    se = se_factory("edit")
    data = os.urandom(300_000)
    with se.client() as c:
        sid = c.post("/api/v1/uploads", json={"length": len(data)}).json()["session_id"]
        at = f"/api/v1/uploads/{sid}"
        for name in ("sha1", "md5", "sha256"):
            bad = c.patch(at, params={"offset": 0}, content=data[:1000],
                          headers={"Content-Digest": _digest(name, b"other")})  # fmt: skip
            assert bad.status_code == 422 and bad.json()["error"]["code"] == "CHECKSUM_MISMATCH"
            assert c.get(at).json()["offset"] == 0
        unknown = c.patch(at, params={"offset": 0}, content=data[:1000],
                          headers={"Content-Digest": "sha-512=:AAAA:"})  # fmt: skip
        assert unknown.status_code == 400, unknown.text
        short = c.patch(at, params={"offset": 0}, content=data[:1000],
                        headers={"Content-Digest": "sha=:AAAA:"})  # fmt: skip
        assert short.status_code == 400, short.text
        done = 0
        for name, size in (("sha1", 100_000), ("md5", 100_000), ("sha256", 100_000)):
            piece = data[done : done + size]
            r = c.patch(at, params={"offset": done}, content=piece,
                        headers={"Content-Digest": _digest(name, piece)})  # fmt: skip
            assert r.status_code == 200, r.text
            done += size
        assert c.post(f"{at}/complete").json()["checksum"] == (
            "sha256:" + hashlib.sha256(data).hexdigest()
        )


def _stalled_append(se: StorageElementUnderTest, token: str, sid: str, data: bytes,
                    announced: int, headers: str = "") -> socket.socket:  # fmt: skip
    """An append that sends ``data`` of the ``announced`` bytes and then nothing more,
    once the SE has written some of it (the SE writes 1 MiB at a time)."""
    u = urlsplit(se.url)
    s = socket.create_connection((str(u.hostname), int(u.port or 80)))
    head = (
        f"PATCH /api/v1/uploads/{sid}?offset=0 HTTP/1.1\r\nHost: {u.netloc}\r\n"
        f"Authorization: {token}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {announced}\r\n{headers}\r\n"
    )
    s.sendall(head.encode() + data)
    written = se.data_dir / "uploads" / sid / "data"
    deadline = time.monotonic() + 30
    while written.stat().st_size < 1024 * 1024:
        assert time.monotonic() < deadline, "the SE never wrote the bytes it was sent"
        time.sleep(0.02)
    return s


def _cut_append(se: StorageElementUnderTest, token: str, sid: str, data: bytes, announced: int,
                headers: str = "") -> None:  # fmt: skip
    """An append whose client goes away mid-body, once the SE has written some of it."""
    _stalled_append(se, token, sid, data, announced, headers).close()


@pytest.mark.local_only
def test_a_cut_body_keeps_what_arrived(se_factory: SEFactory) -> None:
    """tus: an interrupted PATCH keeps what reached the disk (no digest to check)."""
    se = se_factory("edit")
    data = os.urandom(3_000_000)
    with se.client() as c:
        sid = c.post("/api/v1/uploads", json={"length": len(data)}).json()["session_id"]
        _cut_append(se, c.headers["authorization"], sid, data[:2_000_000], len(data))
        # The offset is read under the session's lock: the cut append has ended.
        kept = c.get(f"/api/v1/uploads/{sid}").json()["offset"]
        assert 1024 * 1024 <= kept <= 2_000_000
        r = c.patch(f"/api/v1/uploads/{sid}", params={"offset": kept}, content=data[kept:])
        assert r.status_code == 200 and r.json()["offset"] == len(data)
        done = c.post(f"/api/v1/uploads/{sid}/complete")
        assert done.json()["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.local_only
def test_a_cut_body_with_a_digest_keeps_nothing(se_factory: SEFactory) -> None:
    se = se_factory("edit")
    data = os.urandom(3_000_000)
    with se.client() as c:
        sid = c.post("/api/v1/uploads", json={"length": len(data)}).json()["session_id"]
        digest = f"Content-Digest: {_digest('sha1', data)}\r\n"
        _cut_append(se, c.headers["authorization"], sid, data[:2_000_000], len(data), digest)
        assert c.get(f"/api/v1/uploads/{sid}").json()["offset"] == 0
        r = c.patch(f"/api/v1/uploads/{sid}", params={"offset": 0}, content=data)
        assert r.status_code == 200 and r.json()["offset"] == len(data)


@pytest.mark.local_only
def test_a_stalled_append_is_taken_over_by_its_owner(se_factory: SEFactory) -> None:
    """A client whose connection hangs (no close) holds the session; its owner asking
    again (HEAD, PATCH, DELETE) stops that append, which keeps what arrived."""
    se = se_factory("edit")
    data = os.urandom(3_000_000)
    with se.client() as c:
        sid = c.post("/api/v1/uploads", json={"length": len(data)}).json()["session_id"]
        stalled = _stalled_append(se, c.headers["authorization"], sid, data[:2_000_000], len(data))
        with stalled:
            with se.client(sub="mallory") as other:  # anyone else is refused, and stops nothing
                assert other.get(f"/api/v1/uploads/{sid}").status_code == 403
            kept = c.get(f"/api/v1/uploads/{sid}").json()["offset"]
            assert 1024 * 1024 <= kept <= 2_000_000
            stalled.settimeout(30)
            answer = b""
            while b"UPLOAD_INTERRUPTED" not in answer and (more := stalled.recv(65536)):
                answer += more
            assert answer.startswith(b"HTTP/1.1 409") and b"UPLOAD_INTERRUPTED" in answer
        r = c.patch(f"/api/v1/uploads/{sid}", params={"offset": kept}, content=data[kept:])
        assert r.status_code == 200 and r.json()["offset"] == len(data)
        done = c.post(f"/api/v1/uploads/{sid}/complete")
        assert done.json()["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
