"""The token issuer: grants, claims, errors in RFC 6749 form, refresh rotation and reuse,
revocation, lockout, suspended and expired clients."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.admin import ADMIN_PASSWORD, AUDIENCE, ISSUER, AdminUnderTest, claims_of


def _oauth_error(r: httpx.Response, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error and isinstance(body["error_description"], str), body
    assert set(body) == {"error", "error_description"}  # RFC 6749, not the envelope
    assert r.headers["cache-control"] == "no-store"


def test_password_grant_and_claims(admin: AdminUnderTest) -> None:
    user = admin.create_user(["operator", "auditor"])
    answer = admin.password_grant(user["username"], user["password"])
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 900
    assert answer["refresh_token"] and "." not in answer["refresh_token"]  # opaque
    claims = claims_of(answer["access_token"])
    assert set(claims) == {
        "iss", "aud", "sub", "iat", "nbf", "exp", "jti", "scope", "kind", "name", "roles"
    }  # fmt: skip
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["sub"] == user["username"] and claims["kind"] == "user"
    assert claims["name"] == user["username"]  # no full name: the username
    assert claims["roles"] == ["operator", "auditor"]
    # iat carries milliseconds (revocation cut-offs); exp is whole seconds after it
    assert claims["exp"] - int(claims["iat"]) == 900 and claims["nbf"] == int(claims["iat"])
    assert claims["scope"].split() == [
        "files:read", "files:write", "files:delete", "storage:read", "storage:write",
        "admin:read", "audit:read",
    ]  # fmt: skip
    assert answer["scope"] == claims["scope"]
    with admin.client(answer["access_token"]) as c:
        me = c.get("/api/v1/auth/me").json()
    assert me["sub"] == user["username"] and me["user"]["id"] == user["id"]
    assert me["user"]["last_login_at"] is not None


def test_client_credentials_in_body_and_basic(admin: AdminUnderTest) -> None:
    sa = admin.create_sa(["files:read", "storage:read"])
    assert (
        sa["client_id"].startswith(f"sa_{sa['name']}_") and len(sa["client_id"].split("_")[-1]) == 8
    )
    basic = admin.client_grant(sa["client_id"], sa["client_secret"])
    body = admin.token_request(
        {
            "grant_type": "client_credentials",
            "client_id": sa["client_id"],
            "client_secret": sa["client_secret"],
        }
    )
    assert body.status_code == 200, body.text
    assert "refresh_token" not in basic and "refresh_token" not in body.json()
    claims = claims_of(basic["access_token"])
    assert claims["sub"] == sa["client_id"] and claims["kind"] == "service_account"
    assert claims["name"] == sa["name"] and "roles" not in claims
    assert claims["scope"] == "files:read storage:read"
    narrowed = admin.client_grant(sa["client_id"], sa["client_secret"], scope="storage:read")
    assert narrowed["scope"] == "storage:read"
    r = admin.token_request(
        {"grant_type": "client_credentials", "scope": "admin:write"},
        auth=(sa["client_id"], sa["client_secret"]),
    )
    _oauth_error(r, 400, "invalid_scope")


def test_token_endpoint_errors(admin: AdminUnderTest) -> None:
    sa = admin.create_sa(["files:read"])
    _oauth_error(
        admin.token_request({"grant_type": "password", "username": "admin", "password": "nope"}),
        400,
        "invalid_grant",
    )
    _oauth_error(
        admin.token_request(
            {"grant_type": "password", "username": f"ghost-{time.time_ns()}", "password": "x"}
        ),
        400,
        "invalid_grant",
    )
    bad = admin.token_request({"grant_type": "client_credentials"}, auth=(sa["client_id"], "no"))
    _oauth_error(bad, 401, "invalid_client")
    assert bad.headers["www-authenticate"].startswith("Basic")
    _oauth_error(admin.token_request({"grant_type": "client_credentials"}), 401, "invalid_client")
    _oauth_error(admin.token_request({"grant_type": "implicit"}), 400, "unsupported_grant_type")
    _oauth_error(admin.token_request({}), 400, "invalid_request")
    _oauth_error(admin.token_request({"grant_type": "password"}), 400, "invalid_request")
    as_json = httpx.post(
        f"{admin.url}/api/v1/auth/token", json={"grant_type": "password"}, timeout=10
    )
    _oauth_error(as_json, 400, "invalid_request")
    _oauth_error(
        admin.token_request({"grant_type": "refresh_token", "refresh_token": "made-up"}),
        400,
        "invalid_grant",
    )


def test_refresh_rotates_and_reuse_revokes_the_family(admin: AdminUnderTest) -> None:
    user = admin.create_user(["user"])
    first = admin.password_grant(user["username"], user["password"])
    r = admin.token_request(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["access_token"])["sub"] == user["username"]
    # The first token comes back: someone has a copy. The whole family dies...
    reuse = admin.token_request(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    _oauth_error(reuse, 400, "invalid_grant")
    # ...including the newest token, which was never used.
    _oauth_error(
        admin.token_request(
            {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
        ),
        400,
        "invalid_grant",
    )
    # Another login starts a new, unaffected family.
    third = admin.password_grant(user["username"], user["password"])
    ok = admin.token_request(
        {"grant_type": "refresh_token", "refresh_token": third["refresh_token"]}
    )
    assert ok.status_code == 200


def test_revoke_ends_a_refresh_token(admin: AdminUnderTest) -> None:
    user = admin.create_user(["user"])
    answer = admin.password_grant(user["username"], user["password"])
    r = httpx.post(f"{admin.url}/api/v1/auth/revoke", data={"token": answer["refresh_token"]})
    assert r.status_code == 200
    again = admin.token_request(
        {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]}
    )
    _oauth_error(again, 400, "invalid_grant")
    # RFC 7009: an unknown token is not an error.
    assert httpx.post(f"{admin.url}/api/v1/auth/revoke", data={"token": "junk"}).status_code == 200


def test_refresh_token_is_not_a_bearer_token(admin: AdminUnderTest) -> None:
    user = admin.create_user(["admin"])
    refresh = admin.password_grant(user["username"], user["password"])["refresh_token"]
    with admin.client(refresh) as c:
        for path in ("/api/v1/auth/me", "/api/v1/users", "/api/v1/audit"):
            r = c.get(path)
            assert r.status_code == 401, (path, r.text)
            assert r.json()["error"]["code"] == "UNAUTHORIZED"


def test_lockout_and_unlock(admin: AdminUnderTest) -> None:
    """Five failures lock the (username, address) pair, answered like any refusal
    (docs/security.md); an admin's unlock lifts it."""
    user = admin.create_user(["user"])
    wrong = {"grant_type": "password", "username": user["username"], "password": "wrong-pass"}
    for _ in range(5):
        _oauth_error(admin.token_request(wrong), 400, "invalid_grant")
    right = {"grant_type": "password", "username": user["username"], "password": user["password"]}
    locked = admin.token_request(right)
    _oauth_error(locked, 400, "invalid_grant")
    assert locked.json() == admin.token_request(wrong).json()  # nothing tells it is locked
    with admin.client(admin.admin_token()) as c:
        assert c.post(f"/api/v1/users/{user['id']}/unlock").status_code == 204
        assert c.get(f"/api/v1/users/{user['id']}").json()["status"] == "active"
    admin.password_grant(user["username"], user["password"])


def test_four_failures_do_not_lock_and_success_resets(admin: AdminUnderTest) -> None:
    user = admin.create_user(["user"])
    wrong = {"grant_type": "password", "username": user["username"], "password": "wrong-pass"}
    for _ in range(2):
        # Each wrong password is refused as such; the fifth would lock (test above), so a
        # success after four, and again after four more, shows the success reset the count.
        for _ in range(4):
            _oauth_error(admin.token_request(wrong), 400, "invalid_grant")
        admin.password_grant(user["username"], user["password"])


def test_disabled_user_gets_invalid_grant_and_loses_refresh(admin: AdminUnderTest) -> None:
    user = admin.create_user(["user"])
    answer = admin.password_grant(user["username"], user["password"])
    with admin.client(admin.admin_token()) as c:
        r = c.patch(f"/api/v1/users/{user['id']}", json={"status": "disabled"})
        assert r.status_code == 200 and r.json()["status"] == "disabled"
    r = admin.token_request(
        {"grant_type": "password", "username": user["username"], "password": user["password"]}
    )
    _oauth_error(r, 400, "invalid_grant")
    r = admin.token_request(
        {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]}
    )
    _oauth_error(r, 400, "invalid_grant")


def test_suspended_service_account_gets_invalid_client(admin: AdminUnderTest) -> None:
    sa = admin.create_sa(["files:read"])
    admin.client_grant(sa["client_id"], sa["client_secret"])
    with admin.client(admin.admin_token()) as c:
        r = c.patch(f"/api/v1/service-accounts/{sa['id']}", json={"status": "suspended"})
        assert r.status_code == 200 and r.json()["status"] == "suspended"
    r = admin.token_request(
        {"grant_type": "client_credentials"}, auth=(sa["client_id"], sa["client_secret"])
    )
    _oauth_error(r, 401, "invalid_client")


def test_expired_secret_gets_invalid_client_until_rotated(admin: AdminUnderTest) -> None:
    sa = admin.create_sa(["files:read"])
    admin.sql(
        "UPDATE admin.service_accounts SET secret_expires_at = now() - interval '1 second' "
        "WHERE id = $1",
        sa["id"],
    )
    r = admin.token_request(
        {"grant_type": "client_credentials"}, auth=(sa["client_id"], sa["client_secret"])
    )
    _oauth_error(r, 401, "invalid_client")
    with admin.client(admin.admin_token()) as c:
        rotated = c.post(f"/api/v1/service-accounts/{sa['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["client_id"] == sa["client_id"] and new["client_secret"] != sa["client_secret"]
    r = admin.token_request(
        {"grant_type": "client_credentials"}, auth=(sa["client_id"], sa["client_secret"])
    )
    _oauth_error(r, 401, "invalid_client")  # the old secret is gone
    admin.client_grant(new["client_id"], new["client_secret"])


def test_change_password(admin: AdminUnderTest) -> None:
    user = admin.create_user(["user"])
    answer = admin.password_grant(user["username"], user["password"])
    with admin.client(answer["access_token"]) as c:
        wrong = c.post(
            "/api/v1/auth/change-password",
            json={"current_password": "not it at all", "new_password": "a new long password"},
        )
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "VALIDATION_ERROR"
        short = c.post(
            "/api/v1/auth/change-password",
            json={"current_password": user["password"], "new_password": "short"},
        )
        assert short.status_code == 400
        ok = c.post(
            "/api/v1/auth/change-password",
            json={"current_password": user["password"], "new_password": "a new long password"},
        )
        assert ok.status_code == 204
    r = admin.token_request(
        {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]}
    )
    _oauth_error(r, 400, "invalid_grant")  # changing the password ends the sessions
    admin.password_grant(user["username"], "a new long password")


def test_discovery_and_jwks(admin: AdminUnderTest) -> None:
    conf = httpx.get(f"{admin.url}/.well-known/oauth-authorization-server").json()
    # The endpoints are named where clients reach them: under the public URL.
    assert conf["issuer"] == ISSUER
    assert conf["token_endpoint"] == f"{ISSUER}/api/v1/auth/token"
    assert conf["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert set(conf["grant_types_supported"]) == {
        "authorization_code",  # the console's sign-in (test_authorization_code.py)
        "password",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    }
    keys = httpx.get(admin.jwks_url).json()["keys"]
    assert keys and all(k["alg"] == "RS256" and k["kty"] == "RSA" and "d" not in k for k in keys)


def test_private_keys_are_encrypted_at_rest(admin: AdminUnderTest) -> None:
    rows: list[dict[str, Any]] = admin.sql("SELECT private_key FROM admin.signing_keys")
    assert rows
    for row in rows:
        assert b"PRIVATE KEY" not in bytes(row["private_key"])


@pytest.mark.parametrize("grant", ["password", "client_credentials"])
def test_bootstrap_accounts_exist(admin: AdminUnderTest, grant: str) -> None:
    with admin.client(admin.admin_token()) as c:
        names = {
            a["name"]
            for a in c.get("/api/v1/service-accounts", params={"limit": 1000}).json()["items"]
        }
    assert {"ingester", "query", "storage-element"} <= names
    if grant == "password":
        assert claims_of(admin.admin_token())["roles"] == ["admin"]
    creds = admin.process.log_path.parent / "data" / "bootstrap-credentials.json"
    assert creds.stat().st_mode & 0o777 == 0o600
    import json

    ingester = json.loads(creds.read_text())["ingester"]
    if grant == "client_credentials":
        token = admin.client_grant(ingester["client_id"], ingester["client_secret"])
        assert "storage:read" in token["scope"].split()
    assert ADMIN_PASSWORD not in creds.read_text()  # a given password is not written out


def test_swagger_authorize_uses_the_token_endpoint(admin: AdminUnderTest) -> None:
    schema = httpx.get(f"{admin.url}/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert set(schemes) == {"OAuth2", "BearerToken"}  # fetched, or pasted (issue 17)
    assert schemes["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["BearerToken"]["description"],
    }
    scheme = schemes["OAuth2"]
    assert scheme["type"] == "oauth2"
    flows = scheme["flows"]
    assert set(flows) == {"password", "clientCredentials"}
    assert {f["tokenUrl"] for f in flows.values()} == {f"{admin.url}/api/v1/auth/token"}
    # Swagger UI of another service calls the token endpoint from the browser.
    preflight = httpx.options(
        f"{admin.url}/api/v1/auth/token",
        headers={
            "Origin": "http://127.0.0.1:8010",
            "Access-Control-Request-Method": "POST",
            # what Swagger UI's token request really asks for (issue 17)
            "Access-Control-Request-Headers": "authorization,x-requested-with",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in ("*", "http://127.0.0.1:8010")
