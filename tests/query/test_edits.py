"""PATCH and DELETE /api/v1/files/{id} on the query module, relayed to every copy (issue
17 follow-up, docs/query.md "Editing"): a real admin, storage elements and the query module."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, wait_ready


class EditSystem:
    __test__ = False

    def __init__(self, root: Path, db: TestDatabase) -> None:
        self.system = System(root, db)
        self.rw_a = self.system.add_se("rw")
        self.rw_b = self.system.add_se("rw")
        self.edit = self.system.add_se("edit")
        self.query: ServiceProcess = self.system.start_query(
            QM_REGISTRY_POLL_INTERVAL="1", QM_SE_CONNECT_TIMEOUT="1"
        )
        wait_ready(self.query)
        self.owner = self.system.user_token(["user"])  # files:read + files:write
        self.stranger = self.system.user_token(["user"])
        self.operator = self.system.user_token(["operator"])  # files:* too
        self.auditor = self.system.user_token(["auditor"])  # files:read only
        self.replica_token = self.system.admin.sa_token(["files:write", "storage:write"])

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.query.url, headers=headers, timeout=30)

    def upload(
        self, ses: list[StorageElementUnderTest], token: str, **params: Any
    ) -> dict[str, Any]:
        """One file (one id) on each SE, as the ingester's replicas are."""
        out: dict[str, Any] = {}
        for se in ses:
            tok, chosen = token, {}
            if out:
                tok = self.replica_token
                chosen = {k: out[k] for k in ("file_id", "uploaded_by", "uploaded_at")}
            r = httpx.post(
                f"{se.url}/api/v1/files",
                headers={"Authorization": f"Bearer {tok}"},
                content=os.urandom(1000),
                params={"filename": "doc.bin", "description": "old", **params, **chosen},
                timeout=30,
            )
            assert r.status_code == 201, r.text
            out = r.json()
        return out

    def on_se(self, se: StorageElementUnderTest, file_id: str) -> dict[str, Any]:
        """The copy's metadata as its SE has it (its attr)."""
        r = httpx.get(
            f"{se.url}/api/v1/files/{file_id}",
            headers={"Authorization": f"Bearer {self.operator}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture(scope="module")
def es(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EditSystem]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_edits")
    es = None
    try:
        es = EditSystem(tmp_path_factory.mktemp("edits"), db)
        yield es
    finally:
        if es is not None:
            es.system.stop()
        db.drop()


def _unchanged(es: EditSystem, fid: str, *ses: StorageElementUnderTest) -> None:
    for se in ses:
        attr = es.on_se(se, fid)
        assert attr["description"] == "old" and attr["tags"] == [] and attr["metadata"] == {}


def test_edit_changes_every_copy_and_the_cached_answer(es: EditSystem) -> None:
    fid = es.upload([es.rw_a, es.rw_b], es.owner)["file_id"]
    change = {"description": "new\ttext", "tags": ["a", "b"], "metadata": {"k": "v", "é": "ü"}}
    with es.client(es.owner) as c:
        before = c.get(f"/api/v1/files/{fid}")  # cached now
        assert before.status_code == 200 and before.json()["description"] == "old"
        r = c.patch(f"/api/v1/files/{fid}", json=change)
        assert r.status_code == 200, r.text
        body = r.json()
        assert {k: body[k] for k in change} == change
        assert sorted(x["storage_element_id"] for x in body["copies"]) == sorted(
            [es.rw_a.id, es.rw_b.id]
        )
        for se in (es.rw_a, es.rw_b):
            attr = es.on_se(se, fid)
            assert {k: attr[k] for k in change} == change, se.id
            assert attr["version"] == 2
        after = c.get(f"/api/v1/files/{fid}")
        assert after.status_code == 200 and after.json()["description"] == "new\ttext"
        # One field alone replaces that field only.
        r = c.patch(f"/api/v1/files/{fid}", json={"tags": []})
        assert r.status_code == 200 and r.json()["tags"] == [] and r.json()["metadata"]["k"] == "v"
        assert es.on_se(es.rw_b, fid)["tags"] == [] and es.on_se(es.rw_a, fid)["tags"] == []


def test_another_users_file_is_403_and_no_copy_changes(es: EditSystem) -> None:
    fid = es.upload([es.rw_a, es.rw_b], es.owner)["file_id"]
    with es.client(es.stranger) as c:
        r = c.patch(f"/api/v1/files/{fid}", json={"description": "mine now"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN", r.text
    _unchanged(es, fid, es.rw_a, es.rw_b)
    # An operator's file scopes do not come from the user role alone: any file.
    with es.client(es.operator) as c:
        assert c.patch(f"/api/v1/files/{fid}", json={"description": "ok"}).status_code == 200


def test_tokens_and_scopes(es: EditSystem) -> None:
    fid = es.upload([es.rw_a], es.owner)["file_id"]
    body = {"description": "x"}
    for token in (None, "not-a-token", es.owner[:-4] + "AAAA"):
        with es.client(token) as c:
            r = c.patch(f"/api/v1/files/{fid}", json=body)
            assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
            assert c.delete(f"/api/v1/files/{fid}").status_code == 401
    with es.client(es.auditor) as c:  # files:read only
        r = c.patch(f"/api/v1/files/{fid}", json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    with es.client(es.owner) as c:  # no files:delete
        assert c.delete(f"/api/v1/files/{fid}").status_code == 403
    _unchanged(es, fid, es.rw_a)


def test_hostile_bodies_are_4xx_and_change_nothing(es: EditSystem) -> None:
    fid = es.upload([es.rw_a, es.rw_b], es.owner)["file_id"]
    bodies: list[Any] = [
        {},
        {"description": None},
        {"description": "a\x00b"},
        {"description": "\x1b[31m"},
        {"description": "x" * 5000},
        {"tags": ["ok", "bad\nline"]},
        {"tags": ["t" * 300]},
        {"tags": "not-a-list"},
        {"tags": [1, 2]},
        {"metadata": {"k": 1}},
        {"metadata": {"k\x00": "v"}},
        {"metadata": ["k", "v"]},
        {"metadata": {"k": "v" * 5000}},
        {"description": "x", "retention_policy": "permanent"},
        {"status": "deleted"},
        [],
        "text",
    ]
    with es.client(es.owner) as c:
        for body in bodies:
            r = c.patch(f"/api/v1/files/{fid}", json=body)
            assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
            assert "error" in r.json(), r.text
        raw = [
            b"{",
            b"\xff\xfe",
            b'{"description": "\\u0000"}',
            b'{"description": "\\ud800"}',
            b'{"description": "\xc3"}',
            b"null",
        ]
        for content in raw:
            r = c.patch(
                f"/api/v1/files/{fid}",
                content=content,
                headers={"Content-Type": "application/json"},
            )
            assert 400 <= r.status_code < 500, (content, r.status_code, r.text)
        # Each field fits, the attr does not: the first SE's 413 is the answer.
        big = {"description": "d" * 3000, "metadata": {"m": "v" * 3000}}
        r = c.patch(f"/api/v1/files/{fid}", json=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "ATTR_TOO_LARGE", r.text
        assert c.patch("/api/v1/files/not-a-uuid", json={"description": "x"}).status_code == 400
    _unchanged(es, fid, es.rw_a, es.rw_b)


def test_unknown_is_404_and_deleted_is_410(es: EditSystem) -> None:
    with es.client(es.operator) as c:
        nowhere = str(uuid.uuid4())
        r = c.patch(f"/api/v1/files/{nowhere}", json={"description": "x"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        assert c.delete(f"/api/v1/files/{nowhere}").status_code == 404
        fid = es.upload([es.edit], es.owner)["file_id"]
        assert c.delete(f"/api/v1/files/{fid}").status_code == 204
        r = c.patch(f"/api/v1/files/{fid}", json={"description": "x"})
        assert r.status_code == 410 and r.json()["error"]["code"] == "FILE_GONE"
        assert c.delete(f"/api/v1/files/{fid}").status_code == 410


def test_one_se_down_is_502_naming_it_and_the_others_change(es: EditSystem) -> None:
    fid = es.upload([es.rw_a, es.rw_b], es.owner)["file_id"]
    es.rw_b.process.stop()
    try:
        with es.client(es.owner) as c:
            r = c.patch(f"/api/v1/files/{fid}", json={"description": "partly"})
        assert r.status_code == 502, r.text
        error = r.json()["error"]
        assert error["code"] == "UPSTREAM_UNAVAILABLE" and es.rw_b.id in error["message"]
        assert [f["storage_element_id"] for f in error["details"]["failed"]] == [es.rw_b.id]
        assert error["details"]["changed"] == [es.rw_a.id]
        assert es.on_se(es.rw_a, fid)["description"] == "partly"
    finally:
        es.rw_b.start()
    assert es.on_se(es.rw_b, fid)["description"] == "old"
    # Repeating the edit brings the copy that missed it in step.
    with es.client(es.owner) as c:
        r = c.patch(f"/api/v1/files/{fid}", json={"description": "partly"})
    assert r.status_code == 200, r.text
    assert es.on_se(es.rw_b, fid)["description"] == "partly"


def test_delete_relays_to_every_copy_and_the_mode_refusal_passes(es: EditSystem) -> None:
    fid = es.upload([es.rw_a, es.rw_b], es.owner)["file_id"]
    with es.client(es.operator) as c:
        r = c.delete(f"/api/v1/files/{fid}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "MODE_NOT_ALLOWED", r.text
        assert es.on_se(es.rw_a, fid)["status"] == es.on_se(es.rw_b, fid)["status"] == "active"
        temp = es.upload([es.edit], es.owner, metadata=json.dumps({"k": "v"}))["file_id"]
        assert c.get(f"/api/v1/files/{temp}").json()["status"] == "active"  # cached
        assert c.delete(f"/api/v1/files/{temp}").status_code == 204
        assert es.on_se(es.edit, temp)["status"] == "deleted"
        meta = c.get(f"/api/v1/files/{temp}")
        assert meta.status_code == 200 and meta.json()["status"] == "deleted"
        assert c.get(f"/api/v1/files/{temp}/download").status_code == 410
