"""File ids, history fields and ownership on a storage element (issue 11 items 3, 9).

Real SE processes sharing one catalog; tokens of each kind come from the test issuer:
a ``user`` (file scopes of the user role only), an ``operator`` (storage:write), a
``service`` (the ingester's own account exchanged for an SE-bound token: ``act`` set,
what the ingester sends with its copies), an ``acting`` user (a user's token the ingester
exchanged: ``act`` set) and a ``plain_service`` (a service account's own token, no
``act``, no storage:write). Issue 13 / architecture §10: a chosen id needs ``act`` or
storage:write. The policy lives in the routes, not in the storage backend, so these run
on the local backend only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import SEFactory
from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.proxy import CuttableProxy, proxied
from tests.support.se import StorageElementUnderTest

pytestmark = pytest.mark.local_only

USER = "files:read files:write files:delete"
OPERATOR = "files:read files:write files:delete storage:read storage:write"
SERVICE = "files:read files:write files:delete storage:read"


def _client(
    se: StorageElementUnderTest, issuer: TestIssuer, who: str, sub: str | None = None
) -> httpx.Client:
    act = {"act": {"sub": "ingester"}}
    claims: dict[str, Any] = {
        "user": {"scopes": USER, "kind": "user", "roles": ["user"]},
        "acting": {"scopes": USER, "kind": "user", "roles": ["user"], **act},
        "operator": {"scopes": OPERATOR, "kind": "user", "roles": ["operator"]},
        "service": {"scopes": SERVICE, "kind": "service_account", "roles": [], **act},
        "plain_service": {"scopes": SERVICE, "kind": "service_account", "roles": []},
    }[who]
    scopes = claims.pop("scopes")
    if "act" in claims:  # exchanged tokens are bound to their SE
        claims["aud"] = se.id
    token = issuer.token(scopes, sub or who, **claims)
    return httpx.Client(base_url=se.url, headers={"Authorization": f"Bearer {token}"}, timeout=60.0)


def _put(c: httpx.Client, data: bytes, **params: str) -> httpx.Response:
    return c.post("/api/v1/files", content=data, params={"filename": "f.txt", **params})


def _error(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


@pytest.fixture
def two_ses(se_factory: SEFactory) -> tuple[StorageElementUnderTest, StorageElementUnderTest]:
    return se_factory("edit"), se_factory("edit")


def test_a_user_cannot_take_over_another_users_file_id(
    two_ses: tuple[StorageElementUnderTest, StorageElementUnderTest], issuer: TestIssuer
) -> None:
    first, second = two_ses
    with _client(first, issuer, "user", "alice") as alice:
        fid = _put(alice, b"alice's bytes").json()["file_id"]
    # Bob's own token may not choose an id at all (nothing is asked of the catalog).
    with _client(second, issuer, "user", "bob") as bob:
        for chosen in (fid, str(uuid.uuid4())):
            r = _put(bob, b"bob's bytes", file_id=chosen)
            assert r.status_code == 403, r.text
            assert r.json()["error"]["details"]["reason"] == "id_needs_service"
            session = bob.post("/api/v1/uploads", json={"length": 3, "file_id": chosen})
            assert session.status_code == 403, session.text
    # Through a service acting for him, an id someone else's file has is still refused.
    with _client(second, issuer, "acting", "bob") as bob:
        r = _put(bob, b"bob's bytes", file_id=fid)
        assert r.status_code == 409, r.text
        assert _error(r) == "CONFLICT"
        session = bob.post("/api/v1/uploads", json={"length": 3, "file_id": fid})
        assert session.status_code == 409, session.text
        assert bob.get(f"/api/v1/files/{fid}").status_code == 404
    with _client(first, issuer, "user", "alice") as alice:
        assert alice.get(f"/api/v1/files/{fid}/download").content == b"alice's bytes"
        assert alice.delete(f"/api/v1/files/{fid}").status_code == 204
    # The tombstone's row keeps the id taken: a deleted file cannot be brought back.
    with _client(second, issuer, "acting", "bob") as bob:
        r = _put(bob, b"bob's bytes", file_id=fid)
        assert r.status_code == 409, r.text
        assert bob.get(f"/api/v1/files/{fid}").status_code == 404


def test_operators_and_services_may_reuse_an_id_users_a_fresh_one(
    two_ses: tuple[StorageElementUnderTest, StorageElementUnderTest], issuer: TestIssuer
) -> None:
    first, second = two_ses
    with _client(first, issuer, "user", "alice") as alice:
        fid = _put(alice, b"original").json()["file_id"]
    fresh = str(uuid.uuid4())
    with _client(first, issuer, "acting", "alice") as alice:
        mine = _put(alice, b"fresh id", file_id=fresh)
        assert mine.status_code == 201, mine.text
        assert mine.json()["file_id"] == fresh and mine.json()["uploaded_by"] == "alice"
        # On the same SE an existing id stays 409 for everyone.
        assert _put(alice, b"again", file_id=fresh).status_code == 409
    with _client(second, issuer, "operator") as op:
        r = _put(op, b"original", file_id=fid)
        assert r.status_code == 201, r.text
        assert r.json()["uploaded_by"] == "operator"
    with _client(second, issuer, "service", "ingester") as svc:
        fresh_session = svc.post("/api/v1/uploads", json={"length": 1, "file_id": fresh})
        assert fresh_session.status_code == 201, fresh_session.text
    # A service account's own token (no act, no storage:write) chooses no id.
    with _client(second, issuer, "plain_service", "ci") as plain:
        r = plain.post("/api/v1/uploads", json={"length": 1, "file_id": str(uuid.uuid4())})
        assert r.status_code == 403, r.text


def test_history_fields_are_honoured_from_a_service_account_only(
    se_factory: SEFactory, issuer: TestIssuer
) -> None:
    se = se_factory("edit")
    history = {"uploaded_by": "alice", "uploaded_at": "2026-01-02T03:04:05+00:00"}
    with _client(se, issuer, "user", "bob") as bob:
        r = _put(bob, b"x", **history)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["details"]["fields"] == ["uploaded_at", "uploaded_by"]
        form = bob.post(
            "/api/v1/files",
            data={"uploaded_by": "alice"},
            files={"file": ("f.txt", b"x", "text/plain")},
        )
        assert form.status_code == 400, form.text
        assert form.json()["error"]["details"]["field"] == "uploaded_by"
    with _client(se, issuer, "operator") as op:
        assert _put(op, b"x", uploaded_by="alice").status_code == 403
    with _client(se, issuer, "plain_service", "ci") as plain:
        assert _put(plain, b"x", uploaded_by="alice").status_code == 403
    fid = str(uuid.uuid4())
    with _client(se, issuer, "service", "ingester") as svc:
        half = _put(svc, b"x", finalized_by="carol")
        assert half.status_code == 400 and half.json()["error"]["details"]["field"] == (
            "finalized_at"
        )
        assert _put(svc, b"x", uploaded_at="yesterday").status_code == 400
        r = _put(
            svc,
            b"kept history",
            file_id=fid,
            finalized_by="carol",
            finalized_at="2026-02-03T04:05:06Z",
            **history,
        )
        assert r.status_code == 201, r.text
        meta = svc.get(f"/api/v1/files/{fid}").json()
    assert meta["uploaded_by"] == "alice"
    assert meta["uploaded_at"].startswith("2026-01-02T03:04:05")
    assert meta["finalized_by"] == "carol"
    assert meta["finalized_at"].startswith("2026-02-03T04:05:06")
    # The copy is named for its uploader, not for the service account.
    names = [p.name for p in se.blobs() if f"_{uuid.UUID(fid).hex[:8]}" in p.name]
    assert len(names) == 1 and names[0].startswith("f_alice_"), names
    with _client(se, issuer, "user", "dave") as dave:
        plain = _put(dave, b"plain").json()
    assert plain["finalized_by"] is None and plain["finalized_at"] is None


def test_a_user_changes_only_their_own_files(se_factory: SEFactory, issuer: TestIssuer) -> None:
    se = se_factory("edit")
    with _client(se, issuer, "user", "alice") as alice:
        fid = _put(alice, b"alice's").json()["file_id"]
        other = _put(alice, b"alice's too").json()["file_id"]
    with _client(se, issuer, "user", "bob") as bob:
        patch = bob.patch(f"/api/v1/files/{fid}", json={"description": "mine now"})
        assert patch.status_code == 403, patch.text
        assert patch.json()["error"]["details"]["reason"] == "not_owner"
        assert bob.delete(f"/api/v1/files/{fid}").status_code == 403
        assert bob.get(f"/api/v1/files/{fid}").json()["description"] == ""
        assert (
            bob.patch(f"/api/v1/files/{uuid.uuid4()}", json={"description": "x"}).status_code == 404
        )
    with _client(se, issuer, "user", "alice") as alice:
        r = alice.patch(f"/api/v1/files/{fid}", json={"description": "by alice"})
        assert r.status_code == 200, r.text
    with _client(se, issuer, "operator") as op:
        r = op.patch(f"/api/v1/files/{fid}", json={"description": "by an operator"})
        assert r.status_code == 200 and r.json()["uploaded_by"] == "alice"
        assert op.delete(f"/api/v1/files/{fid}").status_code == 204
    with _client(se, issuer, "service", "ingester") as svc:
        assert svc.delete(f"/api/v1/files/{other}").status_code == 204


@pytest.fixture
def db_proxy(database: TestDatabase) -> Iterator[tuple[CuttableProxy, str]]:
    proxy, url = proxied(database.url)
    yield proxy, url
    proxy.close()


def test_without_a_catalog_a_users_chosen_id_is_refused(
    se_factory: SEFactory, issuer: TestIssuer, db_proxy: tuple[CuttableProxy, str]
) -> None:
    proxy, url = db_proxy
    away = se_factory("edit", DATABASE_URL=url, SE_CATALOG_TIMEOUT="1")
    none = se_factory("edit", DATABASE_URL="")
    proxy.cut()
    try:
        with _client(away, issuer, "acting", "alice") as alice:
            r = _put(alice, b"x", file_id=str(uuid.uuid4()))
            assert r.status_code == 503, r.text
            assert r.json()["error"]["details"]["reason"] == "catalog_unavailable"
            assert _put(alice, b"no id chosen").status_code == 201  # writes go on
        with _client(none, issuer, "acting", "alice") as alice:
            r = _put(alice, b"x", file_id=str(uuid.uuid4()))
            assert r.status_code == 403, r.text
            assert r.json()["error"]["details"]["reason"] == "no_catalog"
        for se in (away, none):
            with _client(se, issuer, "service", "ingester") as svc:
                assert _put(svc, b"x", file_id=str(uuid.uuid4())).status_code == 201
    finally:
        proxy.restore()
