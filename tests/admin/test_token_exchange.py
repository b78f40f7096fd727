"""Token exchange (RFC 8693) and the SE registry's rules (issue 13, architecture §10), against a
running admin: a fake storage element answers ``/info`` so it can be registered."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.admin import AUDIENCE, AdminUnderTest, claims_of
from tests.support.database import TestDatabase
from tests.support.fake_se import FakeSE

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture(scope="module")
def fake(admin: AdminUnderTest) -> Iterator[FakeSE]:
    se = FakeSE()
    with admin.client(admin.admin_token()) as c:
        r = c.post("/api/v1/storage-elements", json={"url": se.url})
    assert r.status_code == 201, r.text
    yield se
    se.close()


@pytest.fixture(scope="module")
def actor(admin: AdminUnderTest) -> tuple[str, str]:
    """A service account allowed to exchange (storage:write), like the ingester's."""
    sa = admin.create_sa(["storage:read", "storage:write", "files:read"])
    return str(sa["client_id"]), str(sa["client_secret"])


def _exchange(
    admin: AdminUnderTest, client: tuple[str, str], subject: str, audience: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": GRANT,
        "subject_token": subject,
        "subject_token_type": ACCESS,
        "audience": audience,
        **extra,
    }
    return admin.token_request(data, auth=client)


def _oauth_error(r: httpx.Response, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == error, r.text


def test_an_exchanged_token_is_bound_to_one_se_and_names_the_actor(
    admin: AdminUnderTest, fake: FakeSE, actor: tuple[str, str]
) -> None:
    subject = admin.user_token(["operator"])
    r = _exchange(admin, actor, subject, fake.id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued_token_type"] == ACCESS and body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    assert r.headers["cache-control"] == "no-store"
    got, mine = claims_of(body["access_token"]), claims_of(subject)
    assert got["aud"] == fake.id
    assert got["act"] == {"sub": actor[0]}
    for same in ("sub", "kind", "name", "roles", "iss"):
        assert got[same] == mine[same], same
    assert set(got["scope"].split()) == set(mine["scope"].split())
    assert 0 < body["expires_in"] <= 300
    assert got["exp"] - got["iat"] <= 300 and got["exp"] <= mine["exp"]
    assert got["jti"] != mine["jti"]
    # Useless at the admin (and at every service but that SE).
    with admin.client(body["access_token"]) as c:
        assert c.get("/api/v1/auth/me").status_code == 401
        assert c.get("/api/v1/storage-elements").status_code == 401
    # Narrowed on request: the intersection with the caller's scopes.
    narrow = _exchange(admin, actor, subject, fake.id, scope="files:read admin:write")
    assert narrow.status_code == 200, narrow.text
    assert claims_of(narrow.json()["access_token"])["scope"] == "files:read"
    # A service account's own token may be bound too (the ingester's copies).
    own = admin.client_grant(*actor)["access_token"]
    r = _exchange(admin, actor, own, fake.id)
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["kind"] == "service_account"


def test_exchange_errors(admin: AdminUnderTest, fake: FakeSE, actor: tuple[str, str]) -> None:
    subject = admin.user_token(["user"])
    weak = admin.create_sa(["files:read", "files:write", "storage:read"])
    weak_client = (str(weak["client_id"]), str(weak["client_secret"]))
    _oauth_error(_exchange(admin, weak_client, subject, fake.id), 400, "unauthorized_client")
    _oauth_error(_exchange(admin, (actor[0], "wrong"), subject, fake.id), 401, "invalid_client")
    r = admin.token_request(
        {"grant_type": GRANT, "subject_token": subject, "subject_token_type": ACCESS,
         "audience": fake.id}
    )  # fmt: skip
    _oauth_error(r, 401, "invalid_client")  # no client authentication at all
    # The audience must be one registered SE, never the common audience.
    _oauth_error(_exchange(admin, actor, subject, "se-nowhere"), 400, "invalid_target")
    _oauth_error(_exchange(admin, actor, subject, AUDIENCE), 400, "invalid_target")
    _oauth_error(
        _exchange(admin, actor, subject, fake.id, resource="http://x"), 400, "invalid_target"
    )
    # The subject must be a valid access token of this issuer with the common audience.
    _oauth_error(_exchange(admin, actor, "not-a-token", fake.id), 400, "invalid_grant")
    bound = _exchange(admin, actor, subject, fake.id).json()["access_token"]
    _oauth_error(_exchange(admin, actor, bound, fake.id), 400, "invalid_grant")
    refresh = admin.password_grant(*_user(admin))["refresh_token"]
    _oauth_error(_exchange(admin, actor, refresh, fake.id), 400, "invalid_grant")
    # Malformed requests.
    r = admin.token_request({"grant_type": GRANT, "audience": fake.id}, auth=actor)
    _oauth_error(r, 400, "invalid_request")
    wrong_type = {"subject_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}
    r = admin.token_request(
        {"grant_type": GRANT, "subject_token": subject, "audience": fake.id, **wrong_type},
        auth=actor,
    )
    _oauth_error(r, 400, "invalid_request")
    _oauth_error(
        _exchange(admin, actor, subject, fake.id, requested_token_type="urn:x"),
        400,
        "invalid_request",
    )
    _oauth_error(
        _exchange(admin, actor, subject, fake.id, scope="admin:write"), 400, "invalid_scope"
    )


def _user(admin: AdminUnderTest) -> tuple[str, str]:
    user = admin.create_user(["user"])
    return str(user["username"]), str(user["password"])


def test_discovery_lists_the_grant(admin: AdminUnderTest) -> None:
    doc = httpx.get(f"{admin.url}/.well-known/oauth-authorization-server", timeout=30).json()
    assert GRANT in doc["grant_types_supported"]
    assert "act" in doc["claims_supported"]


# -- the registry --------------------------------------------------------------------------
def test_registering_or_moving_an_se_needs_admin_write(
    admin: AdminUnderTest, admin_token: str, fake: FakeSE
) -> None:
    operator = admin.user_token(["operator"])
    other = FakeSE()
    try:
        with admin.client(operator) as c:
            r = c.post("/api/v1/storage-elements", json={"url": other.url})
            assert r.status_code == 403, r.text
            r = c.patch(f"/api/v1/storage-elements/{fake.id}", json={"url": other.url})
            assert r.status_code == 403, r.text
            # What storage:write still may do: rename.
            r = c.patch(f"/api/v1/storage-elements/{fake.id}", json={"name": "renamed"})
            assert r.status_code == 200, r.text
        with admin.client(admin_token) as c:
            assert c.get(f"/api/v1/storage-elements/{other.id}").status_code == 404
            # Another SE's url for this id: 409, nothing changed.
            r = c.patch(f"/api/v1/storage-elements/{fake.id}", json={"url": other.url})
            assert r.status_code == 409, r.text
            assert c.get(f"/api/v1/storage-elements/{fake.id}").json()["url"] == fake.url
    finally:
        other.close()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:9/",
        "http://user:pw@127.0.0.1:9",
        "http://127.0.0.1:9/?x=1",
        "http://127.0.0.1:9/#frag",
        "http://127.0.0.1:99999",
        "http://[::1",
        "http://:80",
        "http://127.0.0.1:0",
    ],
)
def test_malformed_se_urls_are_400(admin: AdminUnderTest, admin_token: str, url: str) -> None:
    with admin.client(admin_token) as c:
        for path in ("/api/v1/storage-elements", "/api/v1/storage-elements/discover"):
            r = c.post(path, json={"url": url})
            assert r.status_code == 400, (path, r.text)
            assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_the_se_must_answer_with_the_id_being_registered(
    admin: AdminUnderTest, admin_token: str
) -> None:
    se = FakeSE()
    audience = FakeSE()
    audience.info["storage_id"] = audience.id = AUDIENCE  # an SE claiming the audience
    try:
        with admin.client(admin_token) as c:
            r = c.post("/api/v1/storage-elements", json={"url": se.url, "storage_id": "se-x"})
            assert r.status_code == 409, r.text
            assert c.get("/api/v1/storage-elements/se-x").status_code == 404
            r = c.post("/api/v1/storage-elements", json={"url": audience.url})
            assert r.status_code == 409, r.text
            r = c.post("/api/v1/storage-elements", json={"url": se.url, "storage_id": se.id})
            assert r.status_code == 201, r.text
            assert c.delete(f"/api/v1/storage-elements/{se.id}").status_code == 204
    finally:
        se.close()
        audience.close()


@pytest.fixture(scope="module")
def fenced_admin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminUnderTest]:
    """An admin allowing SEs only on ``localhost`` and in 10.9.0.0/16."""
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_fenced")
    am = AdminUnderTest(
        tmp_path_factory.mktemp("fenced"), db, AM_SE_URL_ALLOW="10.9.0.0/16, localhost"
    ).start()
    yield am
    am.process.stop()
    db.drop()


def test_se_url_allow_restricts_where_ses_may_be_registered(
    fenced_admin: AdminUnderTest,
) -> None:
    se = FakeSE()
    token = fenced_admin.admin_token()
    try:
        with fenced_admin.client(token) as c:
            r = c.post("/api/v1/storage-elements", json={"url": se.url})  # 127.0.0.1
            assert r.status_code == 403, r.text
            assert r.json()["error"]["details"]["reason"] == "url_not_allowed"
            assert se.captured == []
            r = c.post("/api/v1/storage-elements/discover", json={"url": se.url})
            assert r.status_code == 403, r.text
            r = c.post("/api/v1/storage-elements", json={"url": f"http://localhost:{se.port}"})
            assert r.status_code == 201, r.text
            assert c.delete(f"/api/v1/storage-elements/{se.id}").status_code == 204
    finally:
        se.close()
