"""Finalize: a temporary file becomes permanent on rw SE(s) under the same id."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.ingester.conftest import client, se_bytes, se_meta
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System


@dataclass
class Setup:
    edit: StorageElementUnderTest
    rw1: StorageElementUnderTest
    rw2: StorageElementUnderTest
    ingester: ServiceProcess


@pytest.fixture(scope="module")
def setup(system: System) -> Iterator[Setup]:
    edit = system.add_se("edit")
    rw1, rw2 = system.add_se("rw"), system.add_se("rw")
    yield Setup(edit, rw1, rw2, system.start_ingester(IG_REPLICAS="2"))


def _temporary(setup: Setup, token: str, data: bytes) -> dict[str, object]:
    with client(setup.ingester, token) as c:
        r = c.post(
            "/api/v1/files/upload",
            data={"description": "draft", "tags": ["t1"], "metadata": '{"a": "b"}'},
            files={"file": ("draft.txt", data, "text/plain")},
        )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_finalize_moves_the_file_and_is_safe_to_repeat(setup: Setup, user_token: str) -> None:
    data = os.urandom(700_000)
    tmp = _temporary(setup, user_token, data)
    file_id = str(tmp["file_id"])
    with client(setup.ingester, user_token) as c:
        first = c.post(f"/api/v1/files/{file_id}/finalize")
        again = c.post(f"/api/v1/files/{file_id}/finalize")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["file_id"] == file_id and body["retention_policy"] == "permanent"
    assert body["ttl_days"] is None and body["expires_at"] is None
    assert body["checksum"] == tmp["checksum"] and body["size"] == len(data)
    assert body["original_filename"] == "draft.txt" and body["content_type"] == "text/plain"
    assert body["description"] == "draft" and body["tags"] == ["t1"]
    assert body["metadata"] == {"a": "b"}
    assert sorted(c["storage_element_id"] for c in body["copies"]) == sorted(
        [setup.rw1.id, setup.rw2.id]
    )
    for se in (setup.rw1, setup.rw2):
        assert se_bytes(se, file_id) == data
    temp_copy = se_meta(setup.edit, file_id)
    assert temp_copy is not None and temp_copy["status"] == "deleted"
    # The second run finds the work done and answers the same file, copying nothing.
    assert again.status_code == 200, again.text
    assert again.json()["file_id"] == file_id
    assert len(again.json()["copies"]) == 2
    assert len(setup.rw1.attrs()) == len({p.name for p in setup.rw1.attrs()})


def test_retry_after_a_failure_between_copy_and_delete(setup: Setup, user_token: str) -> None:
    """As if an earlier finalize stopped after one rw copy was written: the retry counts
    it, makes only the missing copy and then deletes the temporary one."""
    data = os.urandom(50_000)
    tmp = _temporary(setup, user_token, data)
    file_id = str(tmp["file_id"])
    with setup.rw1.client() as c:
        r = c.post(
            "/api/v1/files",
            params={"file_id": file_id, "filename": "draft.txt", "retention_policy": "permanent"},
            content=data,
        )
    assert r.status_code == 201, r.text
    with client(setup.ingester, user_token) as c:
        done = c.post(f"/api/v1/files/{file_id}/finalize")
    assert done.status_code == 200, done.text
    assert {c["storage_element_id"] for c in done.json()["copies"]} == {
        setup.rw1.id,
        setup.rw2.id,
    }
    assert se_bytes(setup.rw2, file_id) == data
    meta = se_meta(setup.edit, file_id)
    assert meta is not None and meta["status"] == "deleted"


def test_finalize_unknown_or_bad_id(setup: Setup, user_token: str) -> None:
    with client(setup.ingester, user_token) as c:
        unknown = c.post("/api/v1/files/00000000-0000-4000-8000-000000000000/finalize")
        bad = c.post("/api/v1/files/not-a-uuid/finalize")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
    assert bad.status_code == 400


def test_finalize_needs_files_write(setup: Setup, system: System, user_token: str) -> None:
    tmp = _temporary(setup, user_token, b"abc")
    with client(setup.ingester, system.user_token(["auditor"])) as c:
        r = c.post(f"/api/v1/files/{tmp['file_id']}/finalize")
    assert r.status_code == 403, r.text
    meta = se_meta(setup.edit, str(tmp["file_id"]))
    assert meta is not None and meta["status"] == "active"
