"""Issue 13, finding 6: a disabled, deleted or demoted user's access token stops working
at every service within 30 s: the admin at once, an SE sharing the admin's Redis by
push (its polling is turned down to 10 minutes here), a query module without Redis by
polling the admin. Real processes; each condition is polled for with a deadline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.system import System, wait_ready

DEADLINE = 30.0
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_revoke")
    sys = System(tmp_path_factory.mktemp("revoke"), db, REDIS_URL=REDIS)
    try:
        se = sys.add_se("rw", REDIS_URL=REDIS, REVOCATION_POLL_SECONDS="600")
        query = sys.start_query(REVOCATION_POLL_SECONDS="1")
        wait_ready(query)
        yield {"system": sys, "se": se.url, "query": query.url}
    finally:
        sys.stop()
        db.drop()


def _status(url: str, token: str) -> int:
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE} s: {what}")
        time.sleep(0.2)


def _targets(env: dict[str, Any]) -> dict[str, str]:
    sys: System = env["system"]
    return {
        "admin": f"{sys.admin.url}/api/v1/auth/me",
        "se": f"{env['se']}/api/v1/files?limit=1",
        "query": f"{env['query']}/api/v1/search?q=x",
    }


def _user(sys: System, roles: list[str]) -> tuple[dict[str, Any], str]:
    user = sys.admin.create_user(roles)
    return user, str(sys.admin.password_grant(user["username"], user["password"])["access_token"])


def test_a_disabled_users_token_is_refused_everywhere(system: dict[str, Any]) -> None:
    sys: System = system["system"]
    targets = _targets(system)
    user, token = _user(sys, ["admin"])
    for name, url in targets.items():
        assert _status(url, token) == 200, name
    with sys.admin.client(sys.admin_token()) as c:
        assert (
            c.patch(f"/api/v1/users/{user['id']}", json={"status": "disabled"}).status_code == 200
        )
    assert _status(targets["admin"], token) == 401  # the issuer knows at once
    for name, url in targets.items():
        _until(lambda url=url: _status(url, token) == 401, f"{name} refuses the token")
    # Enabled again, the user signs in and the new token works at once.
    with sys.admin.client(sys.admin_token()) as c:
        assert c.patch(f"/api/v1/users/{user['id']}", json={"status": "active"}).status_code == 200
    fresh = sys.admin.password_grant(user["username"], user["password"])["access_token"]
    assert _status(targets["admin"], fresh) == 200
    _until(lambda: _status(targets["se"], fresh) == 200, "the SE accepts the new token")


def test_a_demoted_or_deleted_users_token_is_refused(system: dict[str, Any]) -> None:
    sys: System = system["system"]
    targets = _targets(system)
    demoted, demoted_token = _user(sys, ["admin"])
    deleted, deleted_token = _user(sys, ["user"])
    with sys.admin.client(sys.admin_token()) as c:
        assert (
            c.patch(f"/api/v1/users/{demoted['id']}", json={"roles": ["user"]}).status_code == 200
        )
        assert c.delete(f"/api/v1/users/{deleted['id']}").status_code == 204
    # 401, not 403: the token itself is void, not merely short of a scope.
    assert _status(f"{sys.admin.url}/api/v1/users", demoted_token) == 401
    for name, url in targets.items():
        _until(lambda url=url: _status(url, deleted_token) == 401, f"{name}: deleted user")
        _until(lambda url=url: _status(url, demoted_token) == 401, f"{name}: demoted user")


def test_the_list_is_public_and_names_no_one(system: dict[str, Any]) -> None:
    sys: System = system["system"]
    body = httpx.get(f"{sys.admin.url}/api/v1/auth/revocations", timeout=10).json()
    assert body["revocations"], body
    for entry in body["revocations"]:
        assert len(entry["subject"]) == 64 and entry["not_before"] < entry["expires_at"]
