"""Users and service accounts: CRUD, unique names, validation."""

from __future__ import annotations

import uuid

from tests.support.admin import AdminUnderTest


def test_user_crud_and_duplicates(admin: AdminUnderTest, admin_token: str) -> None:
    name = f"u-{uuid.uuid4().hex[:8]}"
    body = {"username": name, "password": "long enough pw", "roles": ["user"], "email": "a@b.c"}
    with admin.client(admin_token) as c:
        r = c.post("/api/v1/users", json=body)
        assert r.status_code == 201, r.text
        user = r.json()
        assert set(user) >= {"id", "username", "email", "full_name", "roles", "status",
                             "created_at", "updated_at", "last_login_at"}  # fmt: skip
        assert "password" not in r.text and "hash" not in r.text
        dup = c.post("/api/v1/users", json=body)
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "CONFLICT"
        r = c.patch(f"/api/v1/users/{user['id']}", json={"roles": ["auditor"], "full_name": "A B"})
        assert r.status_code == 200 and r.json()["roles"] == ["auditor"]
        assert r.json()["full_name"] == "A B"
        assert c.patch(f"/api/v1/users/{user['id']}", json={"username": "new"}).status_code == 400
        assert c.patch(f"/api/v1/users/{user['id']}", json={"roles": ["king"]}).status_code == 400
        listed = c.get("/api/v1/users", params={"limit": 1000}).json()
        assert name in {u["username"] for u in listed["items"]}
        r = c.post(f"/api/v1/users/{user['id']}/reset-password", json={"new_password": "x" * 12})
        assert r.status_code == 204
        assert c.delete(f"/api/v1/users/{user['id']}").status_code == 204
        assert c.get(f"/api/v1/users/{user['id']}").status_code == 404
        assert c.delete(f"/api/v1/users/{user['id']}").status_code == 404


def test_reset_password(admin: AdminUnderTest, admin_token: str) -> None:
    user = admin.create_user(["user"])
    with admin.client(admin_token) as c:
        r = c.post(f"/api/v1/users/{user['id']}/reset-password", json={"new_password": "n" * 12})
        assert r.status_code == 204
    assert (
        admin.token_request(
            {"grant_type": "password", "username": user["username"], "password": user["password"]}
        ).status_code
        == 400
    )
    admin.password_grant(user["username"], "n" * 12)


def test_user_validation(admin: AdminUnderTest, admin_token: str) -> None:
    with admin.client(admin_token) as c:
        short = c.post(
            "/api/v1/users", json={"username": "shorty", "password": "short", "roles": []}
        )
        assert short.status_code == 400
        err = short.json()["error"]
        assert err["code"] == "VALIDATION_ERROR"
        assert any("password" in f["field"] for f in err["details"]["fields"])
        assert c.get("/api/v1/users/not-a-uuid").status_code == 400
        assert c.get("/api/v1/users", params={"limit": 0}).status_code == 400


def test_service_account_crud_and_duplicates(admin: AdminUnderTest, admin_token: str) -> None:
    name = f"svc-{uuid.uuid4().hex[:8]}"
    with admin.client(admin_token) as c:
        r = c.post("/api/v1/service-accounts", json={"name": name, "scopes": ["files:read"]})
        assert r.status_code == 201, r.text
        sa = r.json()
        assert sa["client_secret"] and sa["status"] == "active"
        assert sa["client_id"].startswith(f"sa_{name}_")
        got = c.get(f"/api/v1/service-accounts/{sa['id']}").json()
        assert "client_secret" not in got and "secret_hash" not in got  # shown once only
        dup = c.post("/api/v1/service-accounts", json={"name": name, "scopes": []})
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "CONFLICT"
        bad = c.post("/api/v1/service-accounts", json={"name": "x" + name, "scopes": ["root"]})
        assert bad.status_code == 400
        renamed = c.patch(
            f"/api/v1/service-accounts/{sa['id']}",
            json={"name": name + "-2", "scopes": ["files:read", "storage:read"]},
        )
        assert renamed.status_code == 200
        assert renamed.json()["client_id"] == sa["client_id"]  # fixed at creation
        other = c.post("/api/v1/service-accounts", json={"name": name + "-3", "scopes": []}).json()
        clash = c.patch(f"/api/v1/service-accounts/{other['id']}", json={"name": name + "-2"})
        assert clash.status_code == 409
        token = admin.client_grant(sa["client_id"], sa["client_secret"])
        assert token["scope"] == "files:read storage:read"
        assert c.delete(f"/api/v1/service-accounts/{sa['id']}").status_code == 204
        assert c.get(f"/api/v1/service-accounts/{sa['id']}").status_code == 404
    gone = admin.token_request(
        {"grant_type": "client_credentials"}, auth=(sa["client_id"], sa["client_secret"])
    )
    assert gone.status_code == 401
