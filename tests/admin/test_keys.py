"""Signing keys: expiry, rotation (old tokens verify until they expire), unknown kids,
and storage elements trusting this issuer through its JWKS alone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.admin import ISSUER, AdminUnderTest, claims_of, header_of
from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.se import StorageElementUnderTest

TTL = 8


@pytest.fixture(scope="module")
def short(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminUnderTest]:
    """An admin whose access tokens live TTL seconds, on a database of its own."""
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_short")
    am = AdminUnderTest(tmp_path_factory.mktemp("short"), db, AM_ACCESS_TOKEN_TTL=str(TTL))
    am.start()
    yield am
    am.process.stop()
    db.drop()


@pytest.fixture(scope="module")
def se(
    short: AdminUnderTest, issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StorageElementUnderTest]:
    """An SE that knows the admin only by its JWKS URL: no shared key file."""
    node = StorageElementUnderTest(
        tmp_path_factory.mktemp("se"),
        issuer,
        short.db.url,
        "edit",
        {"JWKS_URL": short.jwks_url, "JWT_ISSUER": ISSUER, "JWKS_CACHE_SECONDS": "1"},
    )
    node.start()
    yield node
    node.process.stop()


def _me(am: AdminUnderTest, token: str) -> int:
    with am.client(token) as c:
        return c.get("/api/v1/auth/me").status_code


def _se_list(se: StorageElementUnderTest, token: str) -> int:
    r = httpx.get(
        f"{se.url}/api/v1/files", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return r.status_code


def _wait_until_expired(token: str) -> None:
    exp = claims_of(token)["exp"]
    while time.time() < exp + 1:  # the clock, not readiness: exp is a wall-clock time
        time.sleep(0.2)


def test_access_token_expires(short: AdminUnderTest, se: StorageElementUnderTest) -> None:
    token = short.admin_token()
    assert claims_of(token)["exp"] - int(claims_of(token)["iat"]) == TTL
    assert _me(short, token) == 200 and _se_list(se, token) == 200
    _wait_until_expired(token)
    assert _me(short, token) == 401
    assert _se_list(se, token) == 401


def test_rotated_out_key_verifies_until_its_tokens_expire(
    short: AdminUnderTest, se: StorageElementUnderTest
) -> None:
    old = short.admin_token()
    old_kid = header_of(old)["kid"]
    assert _se_list(se, old) == 200  # the SE has the old key cached
    with short.client(old) as c:
        r = c.post("/api/v1/auth/keys/rotate")
        assert r.status_code == 200, r.text
        new_kid = r.json()["kid"]
        assert new_kid != old_kid and r.json()["status"] == "active"
        keys = {k["kid"]: k for k in c.get("/api/v1/auth/keys").json()}
    assert keys[old_kid]["status"] == "retired" and keys[old_kid]["published"] is True
    assert keys[old_kid]["verify_until"] is not None
    published = {k["kid"] for k in httpx.get(short.jwks_url).json()["keys"]}
    assert {old_kid, new_kid} <= published
    new = short.admin_token()
    assert header_of(new)["kid"] == new_kid
    # The SE learns the new kid on its next JWKS fetch (throttled: poll for it)...
    deadline = time.monotonic() + 7
    while _se_list(se, new) != 200:
        assert time.monotonic() < deadline, "SE never accepted the new key"
        time.sleep(0.2)
    # ...and the old key is still in that JWKS.
    assert _se_list(se, old) == 200
    assert _me(short, new) == 200 and _me(short, old) == 200
    _wait_until_expired(old)
    assert _me(short, old) == 401 and _se_list(se, old) == 401


def test_unknown_kid_is_refused(
    short: AdminUnderTest, se: StorageElementUnderTest, issuer: TestIssuer
) -> None:
    forged = issuer.token(iss=ISSUER, aud="artstore")  # right claims, a key nobody published
    assert _me(short, forged) == 401
    assert _se_list(se, forged) == 401
    with short.client(forged) as c:
        r = c.get("/api/v1/users")
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"


def test_se_takes_admin_tokens_and_records_the_user(
    short: AdminUnderTest, se: StorageElementUnderTest
) -> None:
    user = short.create_user(["user"])
    token = short.password_grant(user["username"], user["password"])
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    r = httpx.post(
        f"{se.url}/api/v1/files", headers=headers, content=b"hi", params={"filename": "a.txt"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["uploaded_by"] == user["username"]
    refresh = {"Authorization": f"Bearer {token['refresh_token']}"}
    assert httpx.get(f"{se.url}/api/v1/files", headers=refresh).status_code == 401


@pytest.mark.parametrize("env", [{"JWT_AUDIENCE": "someone-else"}, {"JWT_ISSUER": "other"}])
def test_se_refuses_admin_tokens_for_another_audience_or_issuer(
    short: AdminUnderTest, issuer: TestIssuer, tmp_path: Path, env: dict[str, str]
) -> None:
    node = StorageElementUnderTest(
        tmp_path,
        issuer,
        short.db.url,
        "edit",
        {"JWKS_URL": short.jwks_url, "JWT_ISSUER": ISSUER, **env},
    )
    node.start()
    try:
        r = httpx.get(
            f"{node.url}/api/v1/files",
            headers={"Authorization": f"Bearer {short.admin_token()}"},
            timeout=30,
        )
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    finally:
        node.process.stop()
