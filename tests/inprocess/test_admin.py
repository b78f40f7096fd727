"""The admin module in-process (its own fresh database, real Redis): users, service
accounts, the token endpoint's grants and errors, refresh rotation, lockout, keys, audit."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx

from tests.inprocess.conftest import ADMIN_ISSUER, ADMIN_PASSWORD, AUDIENCE, InProcessAdmin
from tests.inprocess.helpers import assert_error

TOKEN = "/api/v1/auth/token"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def oauth_error(r: httpx.Response, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "error_description"}, body  # RFC 6749, not the envelope
    assert body["error"] == error, body
    assert r.headers["cache-control"] == "no-store"


async def new_user(admin: InProcessAdmin, roles: list[str]) -> dict[str, Any]:
    password = "correct horse battery"
    body = {"username": f"u-{uuid.uuid4().hex[:8]}", "password": password, "roles": roles}
    r = await admin.client.post("/api/v1/users", json=body, headers=await admin.headers())
    assert r.status_code == 201, r.text
    return {**r.json(), "password": password}


async def new_sa(admin: InProcessAdmin, scopes: list[str]) -> dict[str, Any]:
    body = {"name": f"svc-{uuid.uuid4().hex[:8]}", "scopes": scopes}
    r = await admin.client.post(
        "/api/v1/service-accounts", json=body, headers=await admin.headers()
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def grant(admin: InProcessAdmin, data: dict[str, str], **kw: Any) -> httpx.Response:
    return await admin.client.post(TOKEN, data=data, **kw)


async def test_user_crud(admin: InProcessAdmin) -> None:
    c, h = admin.client, await admin.headers()
    name = f"u-{uuid.uuid4().hex[:8]}"
    body = {"username": name, "password": "long enough pw", "roles": ["user"], "email": "a@b.c"}
    r = await c.post("/api/v1/users", json=body, headers=h)
    assert r.status_code == 201, r.text
    user = r.json()
    assert "password" not in r.text and "hash" not in r.text
    assert_error(await c.post("/api/v1/users", json=body, headers=h), 409, "CONFLICT")
    r = await c.patch(
        f"/api/v1/users/{user['id']}", json={"roles": ["auditor"], "full_name": "A B"}, headers=h
    )
    assert r.status_code == 200 and (r.json()["roles"], r.json()["full_name"]) == (
        ["auditor"],
        "A B",
    )
    for bad in ({"username": "new"}, {"roles": ["king"]}):
        r = await c.patch(f"/api/v1/users/{user['id']}", json=bad, headers=h)
        assert_error(r, 400, "VALIDATION_ERROR")
    listed = (await c.get("/api/v1/users", params={"limit": 1000}, headers=h)).json()
    assert name in {u["username"] for u in listed["items"]}
    assert_error(await c.get("/api/v1/users/not-a-uuid", headers=h), 400, "VALIDATION_ERROR")
    assert_error(
        await c.get("/api/v1/users", params={"limit": 0}, headers=h), 400, "VALIDATION_ERROR"
    )
    short = await c.post(
        "/api/v1/users", json={"username": "shorty", "password": "s", "roles": []}, headers=h
    )
    assert_error(short, 400, "VALIDATION_ERROR")
    assert any("password" in f["field"] for f in short.json()["error"]["details"]["fields"])
    assert (await c.delete(f"/api/v1/users/{user['id']}", headers=h)).status_code == 204
    assert_error(await c.get(f"/api/v1/users/{user['id']}", headers=h), 404, "NOT_FOUND")
    assert_error(await c.delete(f"/api/v1/users/{user['id']}", headers=h), 404, "NOT_FOUND")


async def test_reset_and_change_password(admin: InProcessAdmin) -> None:
    user = await new_user(admin, ["user"])
    r = await admin.client.post(
        f"/api/v1/users/{user['id']}/reset-password",
        json={"new_password": "n" * 12},
        headers=await admin.headers(),
    )
    assert r.status_code == 204
    old = {"grant_type": "password", "username": user["username"], "password": user["password"]}
    oauth_error(await grant(admin, old), 400, "invalid_grant")
    token = await admin.token(user["username"], "n" * 12)
    r = await admin.client.post(
        "/api/v1/auth/change-password",
        json={"current_password": "n" * 12, "new_password": "m" * 12},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 204, r.text
    await admin.token(user["username"], "m" * 12)


async def test_service_account_crud_and_grants(admin: InProcessAdmin) -> None:
    c, h = admin.client, await admin.headers()
    sa = await new_sa(admin, ["files:read"])
    assert sa["client_secret"] and sa["status"] == "active"
    assert sa["client_id"].startswith(f"sa_{sa['name']}_")
    got = (await c.get(f"/api/v1/service-accounts/{sa['id']}", headers=h)).json()
    assert "client_secret" not in got and "secret_hash" not in got
    dup = await c.post(
        "/api/v1/service-accounts", json={"name": sa["name"], "scopes": []}, headers=h
    )
    assert_error(dup, 409, "CONFLICT")
    bad = await c.post(
        "/api/v1/service-accounts", json={"name": "x-bad", "scopes": ["root"]}, headers=h
    )
    assert_error(bad, 400, "VALIDATION_ERROR")
    r = await c.patch(
        f"/api/v1/service-accounts/{sa['id']}",
        json={"scopes": ["files:read", "storage:read"]},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["client_id"] == sa["client_id"]
    basic = await grant(
        admin, {"grant_type": "client_credentials"}, auth=(sa["client_id"], sa["client_secret"])
    )
    assert basic.status_code == 200, basic.text
    claims = claims_of(basic.json()["access_token"])
    assert (claims["sub"], claims["kind"], claims["scope"]) == (
        sa["client_id"],
        "service_account",
        "files:read storage:read",
    )
    narrowed = await grant(
        admin,
        {"grant_type": "client_credentials", "client_id": sa["client_id"],
         "client_secret": sa["client_secret"], "scope": "storage:read"},
    )  # fmt: skip
    assert narrowed.json()["scope"] == "storage:read"
    wider = await grant(
        admin, {"grant_type": "client_credentials", "scope": "admin:write"},
        auth=(sa["client_id"], sa["client_secret"]),
    )  # fmt: skip
    oauth_error(wider, 400, "invalid_scope")
    rotated = await c.post(f"/api/v1/service-accounts/{sa['id']}/rotate-secret", headers=h)
    assert rotated.status_code == 200, rotated.text
    old = await grant(
        admin, {"grant_type": "client_credentials"}, auth=(sa["client_id"], sa["client_secret"])
    )
    oauth_error(old, 401, "invalid_client")
    assert (await c.delete(f"/api/v1/service-accounts/{sa['id']}", headers=h)).status_code == 204
    assert_error(await c.get(f"/api/v1/service-accounts/{sa['id']}", headers=h), 404, "NOT_FOUND")


async def test_password_grant_claims_and_me(admin: InProcessAdmin) -> None:
    user = await new_user(admin, ["operator", "auditor"])
    r = await grant(
        admin,
        {"grant_type": "password", "username": user["username"], "password": user["password"]},
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["token_type"] == "Bearer" and "." not in answer["refresh_token"]
    claims = claims_of(answer["access_token"])
    assert (claims["iss"], claims["aud"], claims["sub"]) == (
        ADMIN_ISSUER,
        AUDIENCE,
        user["username"],
    )
    assert claims["roles"] == ["operator", "auditor"]
    me = await admin.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {answer['access_token']}"}
    )
    assert me.json()["user"]["id"] == user["id"]
    refresh = await admin.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {answer['refresh_token']}"}
    )
    assert_error(refresh, 401, "UNAUTHORIZED")


async def test_token_endpoint_errors(admin: InProcessAdmin) -> None:
    wrong = {"grant_type": "password", "username": "admin", "password": "nope"}
    oauth_error(await grant(admin, wrong), 400, "invalid_grant")
    ghost = {"grant_type": "password", "username": f"ghost-{uuid.uuid4().hex}", "password": "x"}
    oauth_error(await grant(admin, ghost), 400, "invalid_grant")
    oauth_error(await grant(admin, {"grant_type": "client_credentials"}), 401, "invalid_client")
    oauth_error(await grant(admin, {"grant_type": "implicit"}), 400, "unsupported_grant_type")
    oauth_error(await grant(admin, {}), 400, "invalid_request")
    made_up = {"grant_type": "refresh_token", "refresh_token": "made-up"}
    oauth_error(await grant(admin, made_up), 400, "invalid_grant")
    as_json = await admin.client.post(TOKEN, json={"grant_type": "password"})
    oauth_error(as_json, 400, "invalid_request")


async def test_refresh_rotates_and_reuse_revokes_the_family(admin: InProcessAdmin) -> None:
    user = await new_user(admin, ["user"])
    login = {"grant_type": "password", "username": user["username"], "password": user["password"]}
    first = (await grant(admin, login)).json()
    r = await grant(admin, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    for token in (first["refresh_token"], second["refresh_token"]):
        again = await grant(admin, {"grant_type": "refresh_token", "refresh_token": token})
        oauth_error(again, 400, "invalid_grant")
    third = (await grant(admin, login)).json()
    assert (
        await admin.client.post("/api/v1/auth/revoke", data={"token": third["refresh_token"]})
    ).status_code == 200
    gone = await grant(
        admin, {"grant_type": "refresh_token", "refresh_token": third["refresh_token"]}
    )
    oauth_error(gone, 400, "invalid_grant")


async def test_lockout_after_five_failures_and_unlock(admin: InProcessAdmin) -> None:
    user = await new_user(admin, ["user"])
    wrong = {"grant_type": "password", "username": user["username"], "password": "wrong-pass"}
    right = {"grant_type": "password", "username": user["username"], "password": user["password"]}
    for _ in range(4):
        oauth_error(await grant(admin, wrong), 400, "invalid_grant")
    assert (await grant(admin, right)).status_code == 200  # four do not lock; success resets
    for _ in range(5):
        oauth_error(await grant(admin, wrong), 400, "invalid_grant")
    locked = await grant(admin, right)
    oauth_error(locked, 400, "invalid_grant")
    h = await admin.headers()
    assert (
        await admin.client.post(f"/api/v1/users/{user['id']}/unlock", headers=h)
    ).status_code == 204
    assert (await grant(admin, right)).status_code == 200


async def test_discovery_keys_and_rotation(admin: InProcessAdmin) -> None:
    conf = (await admin.client.get("/.well-known/oauth-authorization-server")).json()
    assert conf["issuer"] == ADMIN_ISSUER
    keys = (await admin.client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys and all(k["alg"] == "RS256" and "d" not in k for k in keys)
    h = await admin.headers()
    r = await admin.client.post("/api/v1/auth/keys/rotate", headers=h)
    assert r.status_code in (200, 201), r.text
    after = (await admin.client.get("/.well-known/jwks.json")).json()["keys"]
    assert {k["kid"] for k in keys} < {k["kid"] for k in after}
    # Tokens signed by the new key are accepted.
    assert (
        await admin.client.get("/api/v1/auth/me", headers=await admin.headers())
    ).status_code == 200


async def test_audit_records_and_verifies(admin: InProcessAdmin) -> None:
    await new_user(admin, ["user"])
    h = await admin.headers()
    r = await admin.client.get("/api/v1/audit", params={"limit": 50}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["items"]
    v = await admin.client.get("/api/v1/audit/verify", headers=h)
    assert v.status_code == 200, v.text


async def test_scopes_are_enforced(admin: InProcessAdmin) -> None:
    user = await new_user(admin, ["user"])
    token = await admin.token(user["username"], user["password"])
    r = await admin.client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert_error(r, 403, "FORBIDDEN")
    assert_error(await admin.client.get("/api/v1/users"), 401, "UNAUTHORIZED")


async def test_bootstrap_admin_password_is_the_given_one(admin: InProcessAdmin) -> None:
    claims = claims_of(await admin.token("admin", ADMIN_PASSWORD))
    assert claims["roles"] == ["admin"]
