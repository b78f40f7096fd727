"""Issue 13, finding 6: a disabled, deleted or demoted user's access token stops working
at every service within 30 s: the admin at once, an SE sharing the admin's Redis by
push (its polling is turned down to 10 minutes here), a query module without Redis by
polling the admin. Real processes; each condition is polled for with a deadline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.admin.revocation_support import (
    RevocationSystem,
    revocation_system,
    status,
    until,
)
from tests.support.system import System


@pytest.fixture(scope="module")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    with revocation_system(request, tmp_path_factory, "revoke") as env:
        yield {"system": env.system, "env": env}


def _targets(env: dict[str, Any]) -> dict[str, str]:
    revocations: RevocationSystem = env["env"]
    return revocations.targets()


def _user(sys: System, roles: list[str]) -> tuple[dict[str, Any], str]:
    user = sys.admin.create_user(roles)
    return user, str(sys.admin.password_grant(user["username"], user["password"])["access_token"])


def test_a_disabled_users_token_is_refused_everywhere(system: dict[str, Any]) -> None:
    sys: System = system["system"]
    targets = _targets(system)
    user, token = _user(sys, ["admin"])
    for name, url in targets.items():
        assert status(url, token) == 200, name
    with sys.admin.client(sys.admin_token()) as c:
        assert (
            c.patch(f"/api/v1/users/{user['id']}", json={"status": "disabled"}).status_code == 200
        )
    assert status(targets["admin"], token) == 401  # the issuer knows at once
    for name, url in targets.items():
        until(lambda url=url: status(url, token) == 401, f"{name} refuses the token")
    # Enabled again, the user signs in and the new token works at once.
    with sys.admin.client(sys.admin_token()) as c:
        assert c.patch(f"/api/v1/users/{user['id']}", json={"status": "active"}).status_code == 200
    fresh = sys.admin.password_grant(user["username"], user["password"])["access_token"]
    assert status(targets["admin"], fresh) == 200
    until(lambda: status(targets["se"], fresh) == 200, "the SE accepts the new token")


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
    assert status(f"{sys.admin.url}/api/v1/users", demoted_token) == 401
    for name, url in targets.items():
        until(lambda url=url: status(url, deleted_token) == 401, f"{name}: deleted user")
        until(lambda url=url: status(url, demoted_token) == 401, f"{name}: demoted user")


def test_the_list_is_public_and_names_no_one(system: dict[str, Any]) -> None:
    sys: System = system["system"]
    body = httpx.get(f"{sys.admin.url}/api/v1/auth/revocations", timeout=10).json()
    assert body["revocations"], body
    for entry in body["revocations"]:
        assert len(entry["subject"]) == 64 and entry["not_before"] < entry["expires_at"]
