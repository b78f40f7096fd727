"""Issue 13, finding 2: anonymous guessing can neither lock a user out nor tell which
usernames exist; sign-ins are budgeted per address (429 with Retry-After), service
accounts have a budget of their own, change-password failures count and are audited.

A real admin process on its own database; "another client" is a real connection from
another loopback address (127.0.0.0/8 is all this host), not a header it could forge.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.admin import AdminUnderTest
from tests.support.database import TestDatabase

TOKEN = "/api/v1/auth/token"
BURST = 12  # AM_LOGIN_ADDRESS_BURST of this admin


@pytest.fixture(scope="module")
def abuse_admin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminUnderTest]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_abuse")
    am = AdminUnderTest(
        tmp_path_factory.mktemp("abuse"),
        db,
        AM_LOGIN_ADDRESS_BURST=str(BURST),
        AM_LOGIN_ADDRESS_PER_MINUTE="1",
    ).start()
    yield am
    am.process.stop()
    db.drop()


def from_address(admin: AdminUnderTest, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=admin.url, transport=transport, timeout=60)


def password(username: str, secret: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": secret}


def test_concurrent_guesses_from_elsewhere_do_not_lock_the_user_out(
    abuse_admin: AdminUnderTest,
) -> None:
    user = abuse_admin.create_user(["admin"])  # admins were lockable too
    guess = password(user["username"], "not-the-password")

    def attempt(_: int) -> int:
        with from_address(abuse_admin, "127.0.0.2") as c:
            return c.post(TOKEN, data=guess).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(attempt, range(10)))
    assert set(statuses) <= {400, 429} and 400 in statuses
    # The attacker's address is locked for this user, even with the right password...
    with from_address(abuse_admin, "127.0.0.2") as c:
        assert c.post(TOKEN, data=password(user["username"], user["password"])).status_code in (
            400,
            429,
        )
    # ...the user, from their own address, is not.
    with from_address(abuse_admin, "127.0.0.3") as c:
        r = c.post(TOKEN, data=password(user["username"], user["password"]))
    assert r.status_code == 200, r.text


def test_refusals_all_look_the_same(abuse_admin: AdminUnderTest) -> None:
    wrong = abuse_admin.create_user(["user"])
    disabled = abuse_admin.create_user(["user"])
    locked = abuse_admin.create_user(["user"])
    with abuse_admin.client(abuse_admin.admin_token()) as c:
        r = c.patch(f"/api/v1/users/{disabled['id']}", json={"status": "disabled"})
        assert r.status_code == 200
    with from_address(abuse_admin, "127.0.0.4") as c:
        for _ in range(5):
            c.post(TOKEN, data=password(locked["username"], "nope-nope-nope"))
        answers = [
            c.post(TOKEN, data=password(wrong["username"], "nope-nope-nope")),
            c.post(TOKEN, data=password(f"ghost-{uuid.uuid4().hex[:8]}", "nope-nope-nope")),
            c.post(TOKEN, data=password(disabled["username"], disabled["password"])),
            c.post(TOKEN, data=password(locked["username"], locked["password"])),
        ]
    seen = {(r.status_code, r.text) for r in answers}
    assert len(seen) == 1, seen
    assert answers[0].status_code == 400 and answers[0].json()["error"] == "invalid_grant"


def test_an_address_over_its_budget_gets_429_but_service_accounts_do_not(
    abuse_admin: AdminUnderTest,
) -> None:
    sa = abuse_admin.create_sa(["files:read"])
    with from_address(abuse_admin, "127.0.0.5") as c:
        answers = [
            c.post(TOKEN, data=password(f"spray-{i}-{uuid.uuid4().hex[:6]}", "x" * 12))
            for i in range(BURST + 2)
        ]
        assert [r.status_code for r in answers[:BURST]] == [400] * BURST
        limited = answers[-1]
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"] == "slow_down"  # RFC 6749 shape on the token endpoint
        # The address's client_credentials budget is its own.
        r = c.post(
            TOKEN,
            data={"grant_type": "client_credentials"},
            auth=(sa["client_id"], sa["client_secret"]),
        )
        assert r.status_code == 200, r.text


def _audit(admin: AdminUnderTest, user_id: str) -> list[dict[str, Any]]:
    return admin.sql(
        "SELECT action, outcome, details FROM admin.audit_log "
        "WHERE target_id = $1 AND action = 'user.change_password' ORDER BY seq",
        user_id,
    )


def test_wrong_current_password_counts_and_is_audited(abuse_admin: AdminUnderTest) -> None:
    user = abuse_admin.create_user(["user"])
    token = abuse_admin.password_grant(user["username"], user["password"])["access_token"]
    body = {"current_password": "not it at all", "new_password": "a new long password"}
    with from_address(abuse_admin, "127.0.0.6") as c:
        c.headers["Authorization"] = f"Bearer {token}"
        answers = [c.post("/api/v1/auth/change-password", json=body) for _ in range(6)]
        assert [r.status_code for r in answers[:5]] == [400] * 5
        # Five failures from this address lock it for this user, as five bad logins do.
        assert answers[5].status_code == 429 and "Retry-After" in answers[5].headers
        with from_address(abuse_admin, "127.0.0.6") as same:
            r = same.post(TOKEN, data=password(user["username"], user["password"]))
        assert r.status_code == 400
    entries = _audit(abuse_admin, user["id"])
    assert len(entries) == 5 and {e["outcome"] for e in entries} == {"failure"}
    row = abuse_admin.sql("SELECT failed_logins FROM admin.users WHERE id = $1", user["id"])
    assert row[0]["failed_logins"] >= 5
