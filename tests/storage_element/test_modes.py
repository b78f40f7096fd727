"""Modes of a storage element: what each allows and how it moves between them
(architecture §5.4)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.se import SEBackend, StorageElementUnderTest

ALLOWED = {
    "edit": {"upload", "download", "update", "delete", "list"},
    "rw": {"upload", "download", "update", "list"},
    "ro": {"download", "list"},
    "ar": {"list"},
}
OPERATIONS = ["upload", "download", "update", "delete", "list"]
MODES = ["edit", "rw", "ro", "ar"]


@dataclass
class ModeSE:
    se: StorageElementUnderTest
    main: dict[str, Any]  # downloaded, updated, listed
    victim: dict[str, Any]  # deleted where allowed


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]


def upload(c: httpx.Client, data: bytes, name: str) -> dict[str, Any]:
    r = c.post("/api/v1/files", content=data, params={"filename": name})
    assert r.status_code == 201, r.text
    meta: dict[str, Any] = r.json()
    return meta


def transition(c: httpx.Client, target: str, **extra: Any) -> httpx.Response:
    return c.post("/api/v1/mode/transition", json={"target_mode": target, **extra})


def info(se: StorageElementUnderTest) -> dict[str, Any]:
    r = httpx.get(f"{se.url}/api/v1/info", timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def mode_file(se: StorageElementUnderTest) -> str:
    return str(json.loads((se.data_dir / "mode.json").read_text())["mode"])


@pytest.fixture(scope="module")
def by_mode(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: TestIssuer,
    database: TestDatabase,
    se_backend: SEBackend,
) -> Iterator[dict[str, ModeSE]]:
    """One SE per mode, each holding two files; ro and ar are reached by transitions."""
    root = tmp_path_factory.mktemp("modes")
    start_mode = {"edit": "edit", "rw": "rw", "ro": "rw", "ar": "rw"}
    ses = {
        m: StorageElementUnderTest(root, issuer, database.url, start_mode[m], backend=se_backend)
        for m in MODES
    }
    try:
        for se in ses.values():
            se.process.start(wait=False)
        for se in ses.values():
            se.process.wait_ready(timeout=120)  # several start at once
        out = {}
        for mode, se in ses.items():
            with se.client() as c:
                main = upload(c, b"main file of " + mode.encode(), f"main-{mode}.txt")
                victim = upload(c, b"victim of " + mode.encode(), f"victim-{mode}.txt")
                path = {"ro": ["ro"], "ar": ["ro", "ar"]}.get(mode, [])
                for target in path:
                    r = transition(c, target)
                    assert r.status_code == 200, r.text
            assert info(se)["mode"] == mode
            out[mode] = ModeSE(se, main, victim)
        yield out
    finally:
        for se in ses.values():
            se.process.stop()


# -- the table -----------------------------------------------------------------------------
def _do(op: str, m: ModeSE, c: httpx.Client) -> tuple[list[httpx.Response], Callable[[], None]]:
    """Run ``op``; return the answers and a check for when it was allowed."""
    fid, vid = m.main["file_id"], m.victim["file_id"]
    if op == "upload":
        answers = [
            c.post("/api/v1/files", content=b"new", params={"filename": "new.txt"}),
            c.post("/api/v1/files", files={"file": ("new2.txt", b"new2")}),
        ]

        def ok_upload() -> None:
            for r in answers:
                assert r.status_code == 201, r.text
                got = c.get(f"/api/v1/files/{r.json()['file_id']}/download")
                assert got.content in (b"new", b"new2")

        return answers, ok_upload
    if op == "download":
        answers = [
            c.get(f"/api/v1/files/{fid}/download"),
            c.head(f"/api/v1/files/{fid}/download"),
            c.get(f"/api/v1/files/{fid}/download", headers={"Range": "bytes=0-3"}),
        ]

        def ok_download() -> None:
            assert [r.status_code for r in answers] == [200, 200, 206]
            assert answers[0].content.startswith(b"main file of")
            assert answers[2].content == b"main"

        return answers, ok_download
    if op == "update":
        answers = [c.patch(f"/api/v1/files/{fid}", json={"description": f"changed {op}"})]

        def ok_update() -> None:
            assert answers[0].status_code == 200, answers[0].text
            assert answers[0].json()["description"] == "changed update"
            assert c.get(f"/api/v1/files/{fid}").json()["description"] == "changed update"

        return answers, ok_update
    if op == "delete":
        answers = [c.delete(f"/api/v1/files/{vid}")]

        def ok_delete() -> None:
            assert answers[0].status_code == 204, answers[0].text
            assert c.get(f"/api/v1/files/{vid}").json()["status"] == "deleted"

        return answers, ok_delete
    assert op == "list"
    answers = [
        c.get("/api/v1/files"),
        c.get(f"/api/v1/files/{fid}"),
        c.get("/api/v1/files", params={"status": "deleted"}),
    ]

    def ok_list() -> None:
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert fid in [i["file_id"] for i in answers[0].json()["items"]]
        assert answers[1].json()["file_id"] == fid

    return answers, ok_list


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("mode", MODES)
def test_mode_operation_cell(by_mode: dict[str, ModeSE], mode: str, op: str) -> None:
    m = by_mode[mode]
    before = (m.se.attrs(), m.se.blobs())
    with m.se.client() as c:
        answers, ok = _do(op, m, c)
        if op in ALLOWED[mode]:
            ok()
            return
        for r in answers:
            if r.request.method == "HEAD":
                assert r.status_code == 409
                continue
            assert_error(r, 409, "MODE_NOT_ALLOWED")
        # Nothing changed on disk or in the files' metadata.
        assert (m.se.attrs(), m.se.blobs()) == before
        assert m.se.tmp_entries() == []
        for meta in (m.main, m.victim):
            got = c.get(f"/api/v1/files/{meta['file_id']}").json()
            assert got["status"] == "active"
            if op == "update":
                assert got["version"] == meta["version"]


@pytest.mark.parametrize("mode", MODES)
def test_info_allowed_operations(by_mode: dict[str, ModeSE], mode: str) -> None:
    got = info(by_mode[mode].se)
    assert got["mode"] == mode
    assert got["allowed_operations"] == sorted(ALLOWED[mode])


# -- transitions ---------------------------------------------------------------------------
def _transitioned(r: httpx.Response, previous: str, current: str) -> None:
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"previous_mode", "current_mode", "transitioned_at"}
    assert (body["previous_mode"], body["current_mode"]) == (previous, current)
    at = datetime.fromisoformat(body["transitioned_at"])
    assert at.utcoffset() == timedelta(0)
    assert abs(at - datetime.now(UTC)) < timedelta(minutes=5)


def test_transition_rules_and_persistence(
    se_factory: Callable[..., StorageElementUnderTest],
) -> None:
    se = se_factory("rw")
    with se.client() as c:
        upload(c, b"x" * 1000, "cap.bin")
        for target in ("ar", "rw", "edit"):
            assert_error(transition(c, target), 409, "INVALID_TRANSITION")
            assert_error(transition(c, target, confirm=True), 409, "INVALID_TRANSITION")
        assert info(se)["mode"] == "rw" and mode_file(se) == "rw"

        _transitioned(transition(c, "ro"), "rw", "ro")
        assert info(se)["mode"] == "ro" and mode_file(se) == "ro"
        for target in ("ro", "edit"):
            assert_error(transition(c, target), 409, "INVALID_TRANSITION")
        assert_error(transition(c, "rw"), 409, "CONFIRMATION_REQUIRED")
        assert_error(transition(c, "rw", confirm=False), 409, "CONFIRMATION_REQUIRED")
        assert info(se)["mode"] == "ro" and mode_file(se) == "ro"

        _transitioned(transition(c, "rw", confirm=True), "ro", "rw")
        assert info(se)["mode"] == "rw" and mode_file(se) == "rw"
        _transitioned(transition(c, "ro"), "rw", "ro")
        _transitioned(transition(c, "ar"), "ro", "ar")
        assert mode_file(se) == "ar"
        for target in MODES:
            assert_error(transition(c, target), 409, "INVALID_TRANSITION")
            assert_error(transition(c, target, confirm=True), 409, "INVALID_TRANSITION")
    before = info(se)
    assert before["mode"] == "ar"

    se.restart()  # SE_MODE is still "rw": mode.json wins
    after = info(se)
    assert after["mode"] == "ar"
    assert after["allowed_operations"] == ["list"]
    assert mode_file(se) == "ar"
    assert after["capacity"]["used_bytes"] == before["capacity"]["used_bytes"]
    assert after["capacity"]["file_count"] == before["capacity"]["file_count"] == 1
    with se.client() as c:
        assert_error(
            c.post("/api/v1/files", content=b"y", params={"filename": "y"}), 409, "MODE_NOT_ALLOWED"
        )
        assert_error(transition(c, "ro"), 409, "INVALID_TRANSITION")


def test_edit_never_changes(by_mode: dict[str, ModeSE]) -> None:
    se = by_mode["edit"].se
    with se.client() as c:
        for target in MODES:
            assert_error(transition(c, target), 409, "INVALID_TRANSITION")
            assert_error(transition(c, target, confirm=True), 409, "INVALID_TRANSITION")
    assert info(se)["mode"] == "edit" and mode_file(se) == "edit"


@pytest.mark.parametrize(
    "body",
    [
        {"target_mode": "xx"},
        {"target_mode": "RW"},
        {},
        {"target_mode": None},
        {"target_mode": "ro", "confirm": "maybe"},
    ],
)
def test_transition_bad_target_is_400(by_mode: dict[str, ModeSE], body: dict[str, Any]) -> None:
    se = by_mode["rw"].se
    with se.client() as c:
        assert_error(c.post("/api/v1/mode/transition", json=body), 400, "VALIDATION_ERROR")
        r = c.post(
            "/api/v1/mode/transition",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert_error(r, 400, "VALIDATION_ERROR")
    assert info(se)["mode"] == "rw"


@pytest.mark.parametrize(
    "scopes", ["files:read files:write files:delete", "storage:read", "admin:write"]
)
def test_transition_needs_storage_write(by_mode: dict[str, ModeSE], scopes: str) -> None:
    se = by_mode["rw"].se
    with se.client(scopes=scopes) as c:
        assert_error(transition(c, "ro"), 403, "FORBIDDEN")
    with se.client(scopes="") as c:
        r = transition(c, "ro")
        assert_error(r, 401, "UNAUTHORIZED")
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert info(se)["mode"] == "rw" and mode_file(se) == "rw"


# -- /api/v1/info --------------------------------------------------------------------------
def test_info_fields_without_token(by_mode: dict[str, ModeSE]) -> None:
    se = by_mode["rw"].se
    with se.client(scopes="") as c:
        assert "authorization" not in c.headers
        r = c.get("/api/v1/info")
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {
        "storage_id",
        "name",
        "mode",
        "status",
        "version",
        "backend",
        "allowed_operations",
        "capacity",
    }
    assert got["storage_id"] == se.id
    assert got["name"] == se.id  # SE_NAME unset: the id
    assert got["mode"] == "rw"
    assert got["status"] == "online"
    assert isinstance(got["version"], str) and got["version"]
    assert got["backend"] == se.backend.name
    assert got["allowed_operations"] == ["download", "list", "update", "upload"]
    cap = got["capacity"]
    assert set(cap) == {"total_bytes", "used_bytes", "available_bytes", "file_count"}
    assert all(isinstance(v, int) and v >= 0 for v in cap.values())
    assert cap["available_bytes"] <= cap["total_bytes"]
    assert cap["total_bytes"] > 0
    assert cap["file_count"] >= 2


def test_info_capacity_grows_with_uploads(by_mode: dict[str, ModeSE]) -> None:
    se = by_mode["rw"].se
    before = info(se)["capacity"]
    disk_before = sum(p.stat().st_size for p in se.blobs() + se.attrs())
    assert before["used_bytes"] == disk_before
    assert before["file_count"] == len(se.attrs())
    with se.client() as c:
        upload(c, b"z" * 12345, "grow.bin")
    after = info(se)["capacity"]
    assert after["file_count"] == before["file_count"] + 1
    disk_after = sum(p.stat().st_size for p in se.blobs() + se.attrs())
    assert after["used_bytes"] == disk_after
    assert after["used_bytes"] - before["used_bytes"] > 12345
