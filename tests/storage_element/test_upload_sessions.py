"""The SE's upload sessions (the store behind the ingester's tus uploads)."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.conftest import SEFactory


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
