"""The SE registry and poller, and the files view with delete-everywhere, against real
storage elements that trust this admin through its JWKS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.admin import ADMIN_PASSWORD, ISSUER, AdminUnderTest
from tests.support.issuer import TestIssuer
from tests.support.se import StorageElementUnderTest

POLL = 1.0  # AM_SE_POLL_INTERVAL of the admin under test


class SEs:
    def __init__(self, a: StorageElementUnderTest, b: StorageElementUnderTest,
                 c: StorageElementUnderTest) -> None:  # fmt: skip
        self.edit_a, self.edit_b, self.rw_c = a, b, c


@pytest.fixture(scope="module")
def ses(
    admin: AdminUnderTest,
    issuer: TestIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SEs]:
    root = tmp_path_factory.mktemp("ses")
    env = {"JWKS_URL": admin.jwks_url, "JWT_ISSUER": ISSUER}
    nodes = [
        StorageElementUnderTest(root, issuer, admin.db.url, mode, env).start()
        for mode in ("edit", "edit", "rw")
    ]
    with admin.client(admin.admin_token()) as c:
        for node in nodes:
            r = c.post("/api/v1/storage-elements", json={"url": node.url})
            assert r.status_code == 201, r.text
    yield SEs(*nodes)
    for node in nodes:
        node.process.stop()


def _item(admin: AdminUnderTest, token: str, storage_id: str) -> dict[str, Any]:
    with admin.client(token) as c:
        r = c.get(f"/api/v1/storage-elements/{storage_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _upload(se: StorageElementUnderTest, token: str, data: bytes, **params: str) -> Any:
    r = httpx.post(
        f"{se.url}/api/v1/files",
        headers={"Authorization": f"Bearer {token}"},
        content=data,
        params={"filename": "doc.txt", **params},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return r.json()


def _se_status(se: StorageElementUnderTest, token: str, file_id: str) -> str:
    r = httpx.get(f"{se.url}/api/v1/files/{file_id}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def test_registry(admin: AdminUnderTest, admin_token: str, ses: SEs) -> None:
    a = ses.edit_a
    with admin.client(admin_token) as c:
        item = c.get(f"/api/v1/storage-elements/{a.id}").json()
        assert item["url"] == a.url and item["mode"] == "edit" and item["backend"] == "local"
        assert item["status"] == "online" and item["last_seen_at"] is not None
        assert set(item["capacity"]) == {
            "total_bytes",
            "used_bytes",
            "available_bytes",
            "file_count",
        }
        same_url = c.post("/api/v1/storage-elements", json={"url": a.url + "/"})
        assert same_url.status_code == 409 and same_url.json()["error"]["code"] == "CONFLICT"
        same_id = c.post(
            "/api/v1/storage-elements", json={"url": a.url.replace("127.0.0.1", "localhost")}
        )
        assert same_id.status_code == 409
        discovered = c.post("/api/v1/storage-elements/discover", json={"url": a.url})
        assert discovered.status_code == 200 and discovered.json()["storage_id"] == a.id
        nowhere = c.post("/api/v1/storage-elements/discover", json={"url": "http://127.0.0.1:9"})
        assert (
            nowhere.status_code == 502 and nowhere.json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
        )
        edits = c.get("/api/v1/storage-elements", params={"mode": "edit"}).json()["items"]
        assert {a.id, ses.edit_b.id} <= {i["storage_id"] for i in edits}
        assert all(i["mode"] == "edit" for i in edits)
        assert c.get("/api/v1/storage-elements", params={"status": "bogus"}).status_code == 400
        renamed = c.patch(f"/api/v1/storage-elements/{a.id}", json={"name": "Edit A"})
        assert renamed.status_code == 200 and renamed.json()["name"] == "Edit A"
        refreshed = c.post(f"/api/v1/storage-elements/{a.id}/refresh")
        assert refreshed.status_code == 200 and refreshed.json()["status"] == "online"
        assert c.delete(f"/api/v1/storage-elements/{a.id}").status_code == 204
        assert c.get(f"/api/v1/storage-elements/{a.id}").status_code == 404
        again = c.post("/api/v1/storage-elements", json={"url": a.url, "name": "Edit A"})
        assert again.status_code == 201 and again.json()["name"] == "Edit A"
    # ingester and query find SEs with their own service accounts (storage:read)
    with admin.client(admin.sa_token(["storage:read"])) as c:
        assert c.get("/api/v1/storage-elements").status_code == 200


def test_mode_is_forwarded(admin: AdminUnderTest, admin_token: str, ses: SEs) -> None:
    c_id = ses.rw_c.id
    with admin.client(admin_token) as c:
        r = c.post(f"/api/v1/storage-elements/{c_id}/mode", json={"target_mode": "ro"})
        assert r.status_code == 200, r.text
        assert r.json()["previous_mode"] == "rw" and r.json()["current_mode"] == "ro"
        assert _item(admin, admin_token, c_id)["mode"] == "ro"
        refused = c.post(f"/api/v1/storage-elements/{c_id}/mode", json={"target_mode": "rw"})
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "CONFIRMATION_REQUIRED"
        back = c.post(
            f"/api/v1/storage-elements/{c_id}/mode", json={"target_mode": "rw", "confirm": True}
        )
        assert back.status_code == 200 and back.json()["current_mode"] == "rw"
    assert httpx.get(f"{ses.rw_c.url}/api/v1/info").json()["mode"] == "rw"


def _wait_status(admin: AdminUnderTest, token: str, sid: str, want: str, limit: float) -> float:
    started = time.monotonic()
    while _item(admin, token, sid)["status"] != want:
        assert time.monotonic() - started < limit, f"{sid} not {want} within {limit}s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_poller_sees_an_se_go_offline_and_come_back(
    admin: AdminUnderTest, admin_token: str, ses: SEs
) -> None:
    b = ses.edit_b
    seen_before = _item(admin, admin_token, b.id)["last_seen_at"]
    b.process.stop()
    _wait_status(admin, admin_token, b.id, "offline", 2 * POLL + 0.5)
    item = _item(admin, admin_token, b.id)
    assert item["last_seen_at"] >= seen_before and item["mode"] == "edit"
    b.start()
    _wait_status(admin, admin_token, b.id, "online", 2 * POLL + 0.5)
    assert _item(admin, admin_token, b.id)["last_seen_at"] > item["last_seen_at"]


def test_delete_everywhere(admin: AdminUnderTest, admin_token: str, ses: SEs) -> None:
    fid = str(uuid.uuid4())
    for se in (ses.edit_a, ses.edit_b):
        _upload(se, admin_token, b"temporary", file_id=fid)
    with admin.client(admin_token) as c:
        got = c.get(f"/api/v1/admin/files/{fid}").json()
        assert got["status"] == "active" and got["retention_policy"] == "temporary"
        assert sorted(x["storage_element_id"] for x in got["copies"]) == sorted(
            [ses.edit_a.id, ses.edit_b.id]
        )
        assert c.delete(f"/api/v1/admin/files/{fid}").status_code == 204
        gone = c.get(f"/api/v1/admin/files/{fid}").json()
        assert gone["status"] == "deleted"
        assert {x["status"] for x in gone["copies"]} == {"deleted"}
        listed = c.get("/api/v1/admin/files", params={"limit": 1000}).json()["items"]
        assert fid not in {f["file_id"] for f in listed}
        deleted = c.get("/api/v1/admin/files", params={"status": "deleted", "limit": 1000}).json()
        assert fid in {f["file_id"] for f in deleted["items"]}
        again = c.delete(f"/api/v1/admin/files/{fid}")
        assert again.status_code == 410 and again.json()["error"]["code"] == "FILE_GONE"
        audit = c.get("/api/v1/audit", params={"target_id": fid}).json()["items"]
        assert audit[0]["action"] == "file.delete" and audit[0]["outcome"] == "success"
    # The SEs are the authority: their attr files say deleted, also after a restart.
    ses.edit_a.restart()
    for se in (ses.edit_a, ses.edit_b):
        assert _se_status(se, admin_token, fid) == "deleted"
    with admin.client(admin_token) as c:
        assert c.get(f"/api/v1/admin/files/{fid}").json()["status"] == "deleted"


def test_delete_everywhere_refused_when_a_copy_is_on_rw(
    admin: AdminUnderTest, admin_token: str, ses: SEs
) -> None:
    fid = str(uuid.uuid4())
    _upload(ses.edit_a, admin_token, b"both", file_id=fid)
    _upload(ses.rw_c, admin_token, b"both", file_id=fid, retention_policy="permanent")
    with admin.client(admin_token) as c:
        r = c.delete(f"/api/v1/admin/files/{fid}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "MODE_NOT_ALLOWED"
        blocked = r.json()["error"]["details"]["blocked"]
        assert blocked == [{"storage_element_id": ses.rw_c.id, "mode": "rw"}]
        got = c.get(f"/api/v1/admin/files/{fid}").json()
        assert {x["status"] for x in got["copies"]} == {"active"}
        audit = c.get("/api/v1/audit", params={"target_id": fid}).json()["items"]
        assert audit[0]["action"] == "file.delete" and audit[0]["outcome"] == "failure"
    for se in (ses.edit_a, ses.rw_c):
        assert _se_status(se, admin_token, fid) == "active"  # nothing was deleted


def test_files_view_filters(admin: AdminUnderTest, admin_token: str, ses: SEs) -> None:
    user = admin.create_user(["user"])
    token = admin.password_grant(user["username"], user["password"])["access_token"]
    mine = _upload(ses.rw_c, token, b"mine")
    with admin.client(admin_token) as c:

        def ids(**params: str) -> set[str]:
            r = c.get("/api/v1/admin/files", params={"limit": 1000, **params})
            assert r.status_code == 200, r.text
            return {f["file_id"] for f in r.json()["items"]}

        assert ids(uploaded_by=user["username"]) == {mine["file_id"]}
        assert mine["file_id"] in ids(storage_element_id=ses.rw_c.id)
        assert mine["file_id"] not in ids(storage_element_id=ses.edit_a.id)
        assert mine["file_id"] in ids(retention_policy="permanent")
        assert mine["file_id"] not in ids(retention_policy="temporary")
        page = c.get("/api/v1/admin/files", params={"limit": 1}).json()
        assert len(page["items"]) == 1 and page["limit"] == 1 and page["total"] >= 1
        assert c.get(f"/api/v1/admin/files/{uuid.uuid4()}").status_code == 404
        assert c.get("/api/v1/admin/files", params={"status": "gone"}).status_code == 400


def test_old_files_paths_are_deprecated_aliases(
    admin: AdminUnderTest, admin_token: str, ses: SEs
) -> None:
    """The admin's files view moved to /api/v1/admin/files (issue 18); the old paths answer
    the same for one release, marked ``Deprecation: true`` with a Link to the new one."""
    fid = _upload(ses.edit_a, admin_token, b"old path")["file_id"]
    with admin.client(admin_token) as c:
        new = c.get(f"/api/v1/admin/files/{fid}")
        old = c.get(f"/api/v1/files/{fid}")
        assert new.status_code == old.status_code == 200 and old.json() == new.json()
        assert "Deprecation" not in new.headers
        assert old.headers["Deprecation"] == "true"
        assert old.headers["Link"] == '</api/v1/admin/files/{file_id}>; rel="successor-version"'
        listed = c.get("/api/v1/files", params={"limit": 1})
        assert listed.status_code == 200 and listed.headers["Deprecation"] == "true"
        assert listed.headers["Link"] == '</api/v1/admin/files>; rel="successor-version"'
        gone = c.delete(f"/api/v1/files/{fid}")
        assert gone.status_code == 204 and gone.headers["Deprecation"] == "true"
        assert c.get(f"/api/v1/admin/files/{fid}").json()["status"] == "deleted"


# -- an SE registering itself at start (the Kubernetes SE pods' `register` container) ------
ROOT = Path(__file__).resolve().parents[2]


def _register_container() -> dict[str, Any]:
    text = (ROOT / "deploy/k8s/base/storage-element-rw.yaml").read_text()
    doc = next(d for d in yaml.safe_load_all(text) if d["kind"] == "StatefulSet")
    containers = doc["spec"]["template"]["spec"]["containers"]
    return dict(next(c for c in containers if c["name"] == "register"))


def _run_register(
    admin: AdminUnderTest, node: StorageElementUnderTest, se_id: str, log: Path
) -> subprocess.Popen[bytes]:
    """The container's own script, with this venv's `artstore` and the pod's variables."""
    c = _register_container()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(log.parent),
        "ARTSTORE_ADMIN_URL": admin.url,
        "ARTSTORE_CONFIG_DIR": str(log.parent / f"cli-{log.stem}"),
        "ARTSTORE_USERNAME": "admin",
        "ARTSTORE_PASSWORD": ADMIN_PASSWORD,
        "SE_ID": se_id,
        "SE_URL": node.url,  # in a pod: http://$(SE_ID).<headless service>:8010
    }
    with log.open("wb") as out:
        return subprocess.Popen([*c["command"], *c["args"]], env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip


def _wait_for(proc: subprocess.Popen[bytes], log: Path, text: str) -> None:
    deadline = time.monotonic() + 120
    while text not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.terminate()
    return proc.wait(30)


def test_an_se_registers_itself_at_start(
    admin: AdminUnderTest,
    admin_token: str,
    issuer: TestIssuer,
    tmp_path: Path,
) -> None:
    """Started before its SE answers, the script waits for it, registers it under its own
    id, and idles; a restarted pod finds itself registered and idles again; a pod whose
    address serves another SE is refused (the container fails, Kubernetes retries it)."""
    env = {"JWKS_URL": admin.jwks_url, "JWT_ISSUER": ISSUER}
    node = StorageElementUnderTest(tmp_path / "se", issuer, admin.db.url, "rw", env)
    first = _run_register(admin, node, node.id, tmp_path / "first.log")
    try:
        node.start()
        _wait_for(first, tmp_path / "first.log", f"registered {node.id} (rw) at {node.url}")
        item = _item(admin, admin_token, node.id)
        assert item["url"] == node.url and item["mode"] == "rw"
        assert first.poll() is None  # registered, and idling as a container must
    finally:
        assert _stop(first) == 0  # TERM ends it cleanly
    again = _run_register(admin, node, node.id, tmp_path / "again.log")
    try:
        _wait_for(again, tmp_path / "again.log", f"already registered: {node.id} at {node.url}")
    finally:
        assert _stop(again) == 0
    impostor = _run_register(admin, node, "se-someone-else", tmp_path / "impostor.log")
    try:
        assert impostor.wait(120) != 0
        assert "serves another storage element" in (tmp_path / "impostor.log").read_text()
    finally:
        _stop(impostor)
        node.process.stop()
    with admin.client(admin_token) as c:
        assert c.get("/api/v1/storage-elements/se-someone-else").status_code == 404
