"""Issue 13 leftovers: suspending, deleting, narrowing or rotating the secret of a
service account, and a user's password change or reset, end the access tokens already
issued, at every service within 30 s (the same per-subject not-before as disabling a
user: tests/admin/test_revocation.py); refresh tokens end too; each is audited. Real
processes: the admin, an SE hearing of revocations on Redis, a query module polling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.admin.revocation_support import (
    RevocationSystem,
    accepted_everywhere,
    refused_everywhere,
    revocation_system,
    status,
    until,
)

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
READER = ["files:read", "storage:read"]


@pytest.fixture(scope="module")
def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RevocationSystem]:
    with revocation_system(request, tmp_path_factory, "revoke_sa") as running:
        yield running


def _account(env: RevocationSystem, scopes: list[str]) -> tuple[dict[str, Any], str]:
    sa = env.system.admin.create_sa(scopes)
    token = env.system.admin.client_grant(sa["client_id"], sa["client_secret"])
    return sa, str(token["access_token"])


def _admin(env: RevocationSystem) -> httpx.Client:
    return env.system.admin.client(env.system.admin_token())


def _audit(env: RevocationSystem, target_id: str, action: str) -> list[dict[str, Any]]:
    """The ``details`` of the entries, oldest first."""
    rows = env.system.admin.sql(
        "SELECT details FROM admin.audit_log WHERE target_id = $1 AND action = $2 ORDER BY seq",
        target_id,
        action,
    )
    return [json.loads(r["details"]) for r in rows]


def test_a_suspended_accounts_token_is_refused_everywhere(env: RevocationSystem) -> None:
    sa, token = _account(env, READER)
    accepted_everywhere(env, token, "the account's token")
    with _admin(env) as c:
        r = c.patch(f"/api/v1/service-accounts/{sa['id']}", json={"status": "suspended"})
        assert r.status_code == 200, r.text
    refused_everywhere(env, token, "a suspended account's token")
    (entry,) = _audit(env, sa["id"], "service_account.update")
    assert entry["tokens_revoked"] is True
    # Active again, the account gets a token that works at once, everywhere.
    with _admin(env) as c:
        r = c.patch(f"/api/v1/service-accounts/{sa['id']}", json={"status": "active"})
        assert r.status_code == 200, r.text
    fresh = env.system.admin.client_grant(sa["client_id"], sa["client_secret"])["access_token"]
    assert status(env.targets()["admin"], fresh) == 200
    for name, url in env.targets().items():
        until(lambda url=url: status(url, fresh) == 200, f"{name} accepts the new token")


def test_deleting_or_rotating_ends_the_accounts_tokens(env: RevocationSystem) -> None:
    deleted, deleted_token = _account(env, READER)
    rotated, rotated_token = _account(env, READER)
    with _admin(env) as c:
        assert c.delete(f"/api/v1/service-accounts/{deleted['id']}").status_code == 204
        r = c.post(f"/api/v1/service-accounts/{rotated['id']}/rotate-secret")
        assert r.status_code == 200, r.text
        new_secret = r.json()["client_secret"]
    refused_everywhere(env, deleted_token, "a deleted account's token")
    refused_everywhere(env, rotated_token, "a token got with the rotated-out secret")
    fresh = env.system.admin.client_grant(rotated["client_id"], new_secret)["access_token"]
    assert status(env.targets()["admin"], fresh) == 200
    (entry,) = _audit(env, deleted["id"], "service_account.delete")
    assert entry["tokens_revoked"] is True
    (entry,) = _audit(env, rotated["id"], "service_account.rotate_secret")
    assert entry["tokens_revoked"] is True


def test_taking_scopes_away_ends_tokens_adding_them_does_not(env: RevocationSystem) -> None:
    sa, token = _account(env, ["files:read"])
    me = env.targets()["admin"]
    with _admin(env) as c:
        r = c.patch(f"/api/v1/service-accounts/{sa['id']}", json={"scopes": READER})
        assert r.status_code == 200, r.text
        # The issuer applies its entries on commit: a revocation would show here at once.
        assert status(me, token) == 200
        r = c.patch(f"/api/v1/service-accounts/{sa['id']}", json={"description": "renamed nothing"})
        assert r.status_code == 200 and status(me, token) == 200
        r = c.patch(f"/api/v1/service-accounts/{sa['id']}", json={"scopes": ["storage:read"]})
        assert r.status_code == 200, r.text
    refused_everywhere(env, token, "a token holding a scope taken away")
    kept = [e.get("tokens_revoked") for e in _audit(env, sa["id"], "service_account.update")]
    assert kept == [None, None, True]


def test_a_token_exchanged_by_a_suspended_account_is_refused_by_the_se(
    env: RevocationSystem,
) -> None:
    """An SE-bound token names the account that got it in ``act``; it ends with that
    account, while the user's own token (the subject) goes on working."""
    actor, _ = _account(env, ["files:read", "storage:read", "storage:write"])
    user = env.system.admin.create_user(["user"])
    subject = env.system.admin.password_grant(user["username"], user["password"])["access_token"]
    r = env.system.admin.token_request(
        {
            "grant_type": EXCHANGE,
            "subject_token": subject,
            "subject_token_type": ACCESS,
            "audience": env.se.id,
        },
        auth=(actor["client_id"], actor["client_secret"]),
    )
    assert r.status_code == 200, r.text
    bound = r.json()["access_token"]
    se_files = env.targets()["se"]
    assert status(se_files, bound) == 200
    with _admin(env) as c:
        r = c.patch(f"/api/v1/service-accounts/{actor['id']}", json={"status": "suspended"})
        assert r.status_code == 200, r.text
    until(lambda: status(se_files, bound) == 401, "the SE refuses the suspended actor's token")
    assert status(se_files, subject) == 200


def test_a_password_change_ends_the_users_tokens(env: RevocationSystem) -> None:
    admin = env.system.admin
    user = admin.create_user(["user"])
    tokens = admin.password_grant(user["username"], user["password"])
    other = admin.password_grant(user["username"], user["password"])  # a second session
    accepted_everywhere(env, other["access_token"], "the user's token")
    with admin.client(tokens["access_token"]) as c:
        r = c.post(
            "/api/v1/auth/change-password",
            json={"current_password": user["password"], "new_password": "a new long password"},
        )
        assert r.status_code == 204, r.text
    for session in (tokens, other):
        refused_everywhere(env, session["access_token"], "a token from before the change")
        r = admin.token_request(
            {"grant_type": "refresh_token", "refresh_token": session["refresh_token"]}
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    fresh = admin.password_grant(user["username"], "a new long password")["access_token"]
    assert status(env.targets()["admin"], fresh) == 200
    (entry,) = _audit(env, user["id"], "user.change_password")
    assert entry["tokens_revoked"] is True


def test_a_password_reset_ends_the_users_tokens(env: RevocationSystem) -> None:
    admin = env.system.admin
    user = admin.create_user(["user"])
    tokens = admin.password_grant(user["username"], user["password"])
    accepted_everywhere(env, tokens["access_token"], "the user's token")
    with _admin(env) as c:
        r = c.post(
            f"/api/v1/users/{user['id']}/reset-password", json={"new_password": "reset by admin"}
        )
        assert r.status_code == 204, r.text
    refused_everywhere(env, tokens["access_token"], "a token from before the reset")
    r = admin.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    (entry,) = _audit(env, user["id"], "user.reset_password")
    assert entry["tokens_revoked"] is True
