"""File ids, ownership and finalize history through a whole system (issue 11 items 3, 9):
a real admin issuing user, operator and service tokens, an edit SE and two rw SEs, an
ingester writing two replicas and the query module reading the catalog."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from jose import jwt

from tests.ingester.conftest import client, se_meta
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, wait_ready


@dataclass
class Setup:
    edit: StorageElementUnderTest
    rw1: StorageElementUnderTest
    rw2: StorageElementUnderTest
    ingester: ServiceProcess
    query: ServiceProcess
    alice: str
    bob: str
    operator: str


@pytest.fixture(scope="module")
def setup(system: System) -> Iterator[Setup]:
    edit = system.add_se("edit")
    rw1, rw2 = system.add_se("rw"), system.add_se("rw")
    ingester = system.start_ingester(IG_REPLICAS="2")
    query = system.start_query(QM_REGISTRY_POLL_INTERVAL="1")
    wait_ready(query)
    yield Setup(
        edit,
        rw1,
        rw2,
        ingester,
        query,
        system.user_token(["user"]),
        system.user_token(["user"]),
        system.user_token(["operator"]),
    )


def _sub(token: str) -> str:
    return str(jwt.get_unverified_claims(token)["sub"])


def _upload(setup: Setup, token: str, data: bytes, retention: str) -> dict[str, Any]:
    with client(setup.ingester, token) as c:
        r = c.post(
            "/api/v1/files/upload",
            data={"retention_policy": retention},
            files={"file": ("doc.txt", data, "text/plain")},
        )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _direct(se: StorageElementUnderTest, token: str, data: bytes, **params: str) -> httpx.Response:
    return httpx.post(
        f"{se.url}/api/v1/files",
        headers={"Authorization": f"Bearer {token}"},
        content=data,
        params={"filename": "doc.txt", **params},
        timeout=30,
    )


def test_replicas_record_the_user_as_uploader(setup: Setup) -> None:
    stored = _upload(setup, setup.alice, b"two copies", "permanent")
    fid = str(stored["file_id"])
    assert stored["uploaded_by"] == _sub(setup.alice)
    assert {c["storage_element_id"] for c in stored["copies"]} == {setup.rw1.id, setup.rw2.id}
    copies = [se_meta(se, fid) for se in (setup.rw1, setup.rw2)]
    assert all(m is not None for m in copies)
    assert {m["uploaded_by"] for m in copies if m} == {_sub(setup.alice)}
    assert len({m["uploaded_at"] for m in copies if m}) == 1  # one upload, one time


def _acting(system: System, token: str, se: StorageElementUnderTest) -> str:
    """``token`` exchanged by the ingester's account for one bound to ``se`` (what the
    ingester itself sends): a user's chosen id through a service (architecture §10)."""
    creds = system.credentials("ingester")
    r = system.admin.token_request(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "audience": se.id,
        },
        auth=(creds["client_id"], creds["client_secret"]),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_another_user_cannot_take_over_a_file_id(setup: Setup, system: System) -> None:
    stored = _upload(setup, setup.alice, b"alice's bytes", "temporary")
    fid = str(stored["file_id"])
    for se in (setup.edit, setup.rw1):
        # Bob's own token may not choose an id at all (issue 13)...
        r = _direct(se, setup.bob, b"bob's bytes", file_id=fid)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["details"]["reason"] == "id_needs_service"
        # ...and through a service acting for him, alice's id is taken.
        r = _direct(se, _acting(system, setup.bob, se), b"bob's bytes", file_id=fid)
        assert r.status_code == 409, r.text
    forged = _direct(setup.edit, setup.bob, b"x", uploaded_by=_sub(setup.alice))
    assert forged.status_code == 403, forged.text
    with client(setup.query, setup.bob) as q:
        assert q.get(f"/api/v1/files/{fid}/download").content == b"alice's bytes"
        assert q.get(f"/api/v1/files/{fid}").json()["uploaded_by"] == _sub(setup.alice)
    # Deleted (an operator may), the id stays taken: the file cannot be brought back.
    with client(setup.edit.process, setup.operator) as op:
        assert op.delete(f"/api/v1/files/{fid}").status_code == 204
    bob_at_edit = _acting(system, setup.bob, setup.edit)
    r = _direct(setup.edit, bob_at_edit, b"bob's bytes", retention_policy="temporary", file_id=fid)
    assert r.status_code == 409, r.text
    with client(setup.query, setup.bob) as q:
        assert q.get(f"/api/v1/files/{fid}/download").status_code == 410
    # An operator may reuse an id (a restore).
    assert _direct(setup.rw2, setup.operator, b"alice's bytes", file_id=fid).status_code == 201


def test_a_user_cannot_change_or_finalize_another_users_file(setup: Setup) -> None:
    stored = _upload(setup, setup.alice, b"draft", "temporary")
    fid = str(stored["file_id"])
    with client(setup.edit.process, setup.bob) as bob:
        assert bob.patch(f"/api/v1/files/{fid}", json={"description": "x"}).status_code == 403
    with client(setup.ingester, setup.bob) as bob:
        r = bob.post(f"/api/v1/files/{fid}/finalize")
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "FORBIDDEN"
    meta = se_meta(setup.edit, fid)
    assert meta is not None and meta["status"] == "active"
    assert se_meta(setup.rw1, fid) is None and se_meta(setup.rw2, fid) is None
    with client(setup.edit.process, setup.alice) as alice:
        r = alice.patch(f"/api/v1/files/{fid}", json={"description": "mine"})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("finalizer", ["alice", "operator"])
def test_finalize_keeps_history_and_adds_the_finalizer(setup: Setup, finalizer: str) -> None:
    data = os.urandom(100_000)
    tmp = _upload(setup, setup.alice, data, "temporary")
    fid = str(tmp["file_id"])
    token = getattr(setup, finalizer)
    with client(setup.ingester, token) as c:
        r = c.post(f"/api/v1/files/{fid}/finalize")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["uploaded_by"] == _sub(setup.alice)
    assert body["uploaded_at"] == tmp["uploaded_at"]
    assert body["finalized_by"] == _sub(token) and body["finalized_at"] is not None
    for se in (setup.rw1, setup.rw2):
        meta = se_meta(se, fid)
        assert meta is not None
        assert (meta["uploaded_by"], meta["uploaded_at"]) == (_sub(setup.alice), tmp["uploaded_at"])
        assert (meta["finalized_by"], meta["finalized_at"]) == (
            body["finalized_by"],
            body["finalized_at"],
        )
    with client(setup.query, setup.alice) as q:
        shown = q.get(f"/api/v1/files/{fid}").json()
    assert shown["retention_policy"] == "permanent"
    assert shown["uploaded_by"] == _sub(setup.alice)
    assert shown["finalized_by"] == _sub(token)
