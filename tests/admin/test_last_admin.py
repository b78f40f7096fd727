"""Issue 13, finding 6: the last active admin cannot delete, disable or demote itself
(nor be, by anyone): 409 CONFLICT. A real admin on a database of its own, so the
bootstrap admin starts out as the only one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.admin import AdminUnderTest
from tests.support.database import TestDatabase


@pytest.fixture(scope="module")
def lone_admin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminUnderTest]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_lone")
    am = AdminUnderTest(tmp_path_factory.mktemp("lone"), db).start()
    yield am
    am.process.stop()
    db.drop()


def test_the_last_admin_stays(lone_admin: AdminUnderTest) -> None:
    with lone_admin.client(lone_admin.admin_token()) as c:
        me = c.get("/api/v1/auth/me").json()["user"]
        for change in ({"status": "disabled"}, {"roles": ["user"]}, {"roles": ["operator"]}):
            r = c.patch(f"/api/v1/users/{me['id']}", json=change)
            assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT", r.text
        r = c.delete(f"/api/v1/users/{me['id']}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT", r.text
        # Harmless changes of the last admin are still allowed.
        assert c.patch(f"/api/v1/users/{me['id']}", json={"full_name": "Root"}).status_code == 200
        assert (
            c.patch(f"/api/v1/users/{me['id']}", json={"roles": ["admin", "auditor"]}).status_code
            == 200
        )

    second = lone_admin.create_user(["admin"])
    with lone_admin.client(lone_admin.admin_token()) as c:
        # With another admin, the first may be demoted...
        me = c.get("/api/v1/auth/me").json()["user"]
        r = c.patch(f"/api/v1/users/{me['id']}", json={"roles": ["user"]})
        assert r.status_code == 200, r.text
    token = lone_admin.password_grant(second["username"], second["password"])["access_token"]
    with lone_admin.client(token) as c:
        # ...and then the second is the last one.
        r = c.delete(f"/api/v1/users/{second['id']}")
        assert r.status_code == 409, r.text
        r = c.patch(f"/api/v1/users/{second['id']}", json={"status": "disabled"})
        assert r.status_code == 409, r.text
        # Promote the first again so the admin token of this module keeps working.
        assert c.patch(f"/api/v1/users/{me['id']}", json={"roles": ["admin"]}).status_code == 200
