"""The audit log: what is recorded, filters, and a hash chain that shows tampering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.admin import AdminUnderTest


def _audit(admin: AdminUnderTest, token: str, **params: Any) -> list[dict[str, Any]]:
    with admin.client(token) as c:
        r = c.get("/api/v1/audit", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_mutations_and_logins_are_recorded(admin: AdminUnderTest, admin_token: str) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    user = admin.create_user(["user"])
    admin.token_request(
        {"grant_type": "password", "username": user["username"], "password": "wrong-password"}
    )
    admin.password_grant(user["username"], user["password"])
    with admin.client(admin_token) as c:
        c.patch(
            f"/api/v1/users/{user['id']}",
            json={"full_name": "Zed"},
            headers={"X-Request-ID": "rid-audit-1"},
        )
    entries = _audit(admin, admin_token, target_id=user["id"])
    actions = [e["action"] for e in entries]
    # newest first
    assert actions == ["user.update", "login.success", "login.failure", "user.create"]
    update, success, failure, create = entries
    assert create["actor"] == "admin" and create["actor_kind"] == "user"
    assert create["target_type"] == "user" and create["outcome"] == "success"
    assert failure["actor"] == user["username"] and failure["actor_kind"] == "anonymous"
    assert failure["outcome"] == "failure"
    assert success["outcome"] == "success"
    assert update["request_id"] == "rid-audit-1"
    for e in entries:
        assert len(e["hash"]) == 64 and len(e["prev_hash"]) == 64
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs, reverse=True)
    # filters
    assert {
        e["action"]
        for e in _audit(admin, admin_token, action="login.failure", actor=user["username"])
    } == {"login.failure"}
    since = _audit(
        admin, admin_token, since=started.isoformat(), target_type="user", target_id=user["id"]
    )
    assert len(since) == 4
    assert _audit(admin, admin_token, until=started.isoformat(), target_id=user["id"]) == []
    with admin.client(admin_token) as c:
        assert c.get("/api/v1/audit", params={"since": "yesterday"}).status_code == 400


def test_key_and_account_actions(admin: AdminUnderTest, admin_token: str) -> None:
    sa = admin.create_sa(["files:read"])
    with admin.client(admin_token) as c:
        c.post(f"/api/v1/service-accounts/{sa['id']}/rotate-secret")
        c.delete(f"/api/v1/service-accounts/{sa['id']}")
    actions = [e["action"] for e in _audit(admin, admin_token, target_id=sa["id"])]
    assert actions == [
        "service_account.delete",
        "service_account.rotate_secret",
        "service_account.create",
    ]


def test_verify_finds_the_edited_row(admin: AdminUnderTest, admin_token: str) -> None:
    admin.create_user(["user"])
    admin.create_user(["user"])
    with admin.client(admin_token) as c:
        ok = c.get("/api/v1/audit/verify").json()
    assert ok["ok"] is True and ok["first_bad_seq"] is None and ok["entries_checked"] >= 3
    target = ok["entries_checked"] - 1  # not the last: the link to the next must break too
    (row,) = admin.sql("SELECT actor FROM admin.audit_log WHERE seq = $1", target)
    admin.sql("UPDATE admin.audit_log SET actor = 'mallory' WHERE seq = $1", target)
    try:
        with admin.client(admin_token) as c:
            bad = c.get("/api/v1/audit/verify").json()
        assert {k: bad[k] for k in ("ok", "entries_checked", "first_bad_seq", "reason")} == {
            "ok": False,
            "entries_checked": target,
            "first_bad_seq": target,
            "reason": f"entry {target} was changed",
        }
    finally:
        admin.sql("UPDATE admin.audit_log SET actor = $2 WHERE seq = $1", target, row["actor"])
    with admin.client(admin_token) as c:
        assert c.get("/api/v1/audit/verify").json()["ok"] is True
