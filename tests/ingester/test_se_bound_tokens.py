"""Issue 13 finding 1, the operator -> admin escalation, on a running system.

An operator could register any URL as a storage element; the ingester, the query module
and the admin then sent it each caller's own bearer token, and an admin's token captured
that way created a new admin user. Now registering needs admin:write, and nothing sent to
an SE is good anywhere else: every token an SE receives is bound to it (``aud`` = its id,
``act`` = the acting service) by token exchange. Here a rogue SE (tests/support/fake_se)
is registered by an admin anyway (a mistake, or a real SE taken over), an admin then uses
the ingester, the query module and the admin against it, and every token it captured is
tried at the admin, at a real SE, at the ingester and at the query module: all 401.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.ingester.conftest import client
from tests.support.admin import claims_of
from tests.support.fake_se import FakeSE
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, wait_ready


@dataclass
class Setup:
    fake: FakeSE
    rw: StorageElementUnderTest
    ingester: ServiceProcess
    query: ServiceProcess
    admin_token: str


@pytest.fixture(scope="module")
def setup(system: System) -> Iterator[Setup]:
    rw = system.add_se("rw")
    fake = FakeSE()  # the only edit SE: temporary uploads go to it
    operator = system.user_token(["operator"])
    with system.admin.client(operator) as c:
        r = c.post("/api/v1/storage-elements", json={"url": fake.url})
    assert r.status_code == 403, r.text  # was 201: any operator could add an SE
    with system.admin.client(system.admin_token()) as c:
        r = c.post("/api/v1/storage-elements", json={"url": fake.url})
    assert r.status_code == 201, r.text
    ingester = system.start_ingester(IG_REPLICAS="1")
    query = system.start_query(QM_REGISTRY_POLL_INTERVAL="1")
    wait_ready(query)
    yield Setup(fake, rw, ingester, query, system.admin_token())
    fake.close()


def _plant_copy_on(setup: Setup, system: System, source_id: str) -> str:
    """A catalog row saying the rogue SE holds a copy of a new file (as a real SE
    that later turned rogue would have)."""
    cols = [
        r["column_name"]
        for r in system.admin.sql(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'catalog' AND table_name = 'files' "
            "AND is_generated = 'NEVER' AND generation_expression IS NULL"
        )
    ]
    new_id = str(uuid.uuid4())
    values = {"file_id": "$1::uuid", "storage_element_id": "$2"}
    select = ", ".join(values.get(c, f'"{c}"') for c in cols)
    names = ", ".join(f'"{c}"' for c in cols)
    system.admin.sql(
        f"INSERT INTO catalog.files ({names}) SELECT {select} FROM catalog.files "  # noqa: S608 - column names from the catalog
        "WHERE file_id = $3::uuid",
        new_id,
        setup.fake.id,
        source_id,
    )
    return new_id


def _rejected_everywhere(setup: Setup, system: System, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    urls = [
        f"{system.admin.url}/api/v1/users",
        f"{system.admin.url}/api/v1/auth/me",
        f"{setup.rw.url}/api/v1/files/{uuid.uuid4()}",
        f"{setup.query.url}/api/v1/files/{uuid.uuid4()}",
    ]
    for url in urls:
        r = httpx.get(url, headers=auth, timeout=30)
        assert r.status_code == 401, (url, r.status_code, r.text)
    r = httpx.post(
        f"{system.admin.url}/api/v1/users",
        headers=auth,
        json={"username": f"evil-{uuid.uuid4().hex[:6]}", "password": "x" * 16,
              "roles": ["admin"]},
        timeout=30,
    )  # fmt: skip
    assert r.status_code == 401, r.text
    r = httpx.post(
        f"{setup.ingester.url}/api/v1/files/upload",
        headers=auth,
        files={"file": ("x.txt", b"x", "text/plain")},
        timeout=30,
    )
    assert r.status_code == 401, r.text


def test_a_rogue_se_never_receives_a_token_good_elsewhere(setup: Setup, system: System) -> None:
    admin_sub = claims_of(setup.admin_token)["sub"]
    ingester_id = system.credentials("ingester")["client_id"]
    query_id = system.credentials("query")["client_id"]
    # 1. The ingester: a temporary upload is placed on the rogue SE (its only edit SE).
    with client(setup.ingester, setup.admin_token) as c:
        c.post(
            "/api/v1/files/upload",
            data={"retention_policy": "temporary"},
            files={"file": ("a.txt", b"secret", "text/plain")},
        )
        # tus: the session is opened with the caller's (exchanged) token.
        c.post(
            "/api/v1/uploads",
            headers={"Tus-Resumable": "1.0.0", "Upload-Length": "3"},
        )
        # A permanent upload lands on the real rw SE with an SE-bound token.
        r = c.post(
            "/api/v1/files/upload",
            data={"retention_policy": "permanent"},
            files={"file": ("b.txt", b"real bytes", "text/plain")},
        )
    assert r.status_code == 201, r.text
    real_id = str(r.json()["file_id"])
    # 2. The query module: a download whose only copy is on the rogue SE.
    planted = _plant_copy_on(setup, system, real_id)
    with client(setup.query, setup.admin_token) as q:
        q.get(f"/api/v1/files/{planted}/download")
        # A signed link: the query module's own account, bound to the SE as well.
        link = q.post(f"/api/v1/files/{planted}/link", json={})
        assert link.status_code == 201, link.text
        httpx.get(link.json()["url"], timeout=30)
    # 3. The admin: a mode change and a delete-everywhere forwarded to the rogue SE.
    with system.admin.client(setup.admin_token) as c:
        c.post(f"/api/v1/storage-elements/{setup.fake.id}/mode", json={"target_mode": "ro"})
        c.delete(f"/api/v1/files/{planted}")

    tokens = setup.fake.tokens()
    paths = {(m, p) for m, p, _ in setup.fake.captured}
    assert ("POST", "/api/v1/files") in paths  # the ingester's upload
    assert ("POST", "/api/v1/uploads") in paths  # the tus session
    assert ("GET", f"/api/v1/files/{planted}/download") in paths  # the query module
    assert ("POST", "/api/v1/mode/transition") in paths  # the admin
    assert ("DELETE", f"/api/v1/files/{planted}") in paths
    assert tokens and setup.admin_token not in tokens
    actors = set()
    for token in tokens:
        claims = claims_of(token)
        assert claims["aud"] == setup.fake.id, claims
        assert claims["exp"] - claims["iat"] <= 300
        actors.add((claims["sub"], claims["act"]["sub"]))
        _rejected_everywhere(setup, system, token)
    # The caller's identity reached the SE through each acting service.
    assert (admin_sub, ingester_id) in actors
    assert (admin_sub, query_id) in actors
    assert (admin_sub, "artstore-admin") in actors
    assert (query_id, query_id) in actors  # the signed link, read by the query's account
    # The ingester's own account was bound to the SE too (copies it writes).
    assert (ingester_id, ingester_id) in actors
    # The real SE took the permanent copy written with a token bound to it.
    with client(setup.query, setup.admin_token) as q:
        assert q.get(f"/api/v1/files/{real_id}/download").content == b"real bytes"
