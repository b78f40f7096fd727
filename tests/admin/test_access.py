"""Who may call what: every endpoint's 401 and 403 (one test per row), and the roles."""

from __future__ import annotations

from typing import Any

import pytest

from artstore.common.auth import ALL_SCOPES
from tests.support.admin import AdminUnderTest

U = "00000000-0000-4000-8000-000000000001"  # fixed: xdist workers must collect the same ids
SE = "se-nowhere"
_BODY_USER = {"username": "x-never", "password": "p" * 12, "roles": ["user"]}

# (method, path, scopes any of which suffices, body); None = any valid token
MATRIX: list[tuple[str, str, tuple[str, ...] | None, Any]] = [
    ("GET", "/api/v1/auth/me", None, None),
    ("GET", "/api/v1/auth/keys", ("admin:read",), None),
    ("POST", "/api/v1/auth/keys/rotate", ("admin:write",), None),
    ("GET", "/api/v1/users", ("admin:read",), None),
    ("POST", "/api/v1/users", ("admin:write",), _BODY_USER),
    ("GET", f"/api/v1/users/{U}", ("admin:read",), None),
    ("PATCH", f"/api/v1/users/{U}", ("admin:write",), {"full_name": "x"}),
    ("DELETE", f"/api/v1/users/{U}", ("admin:write",), None),
    ("POST", f"/api/v1/users/{U}/unlock", ("admin:write",), None),
    ("POST", f"/api/v1/users/{U}/reset-password", ("admin:write",), {"new_password": "p" * 12}),
    ("GET", "/api/v1/service-accounts", ("admin:read",), None),
    ("POST", "/api/v1/service-accounts", ("admin:write",), {"name": "never", "scopes": []}),
    ("GET", f"/api/v1/service-accounts/{U}", ("admin:read",), None),
    ("PATCH", f"/api/v1/service-accounts/{U}", ("admin:write",), {"description": "x"}),
    ("DELETE", f"/api/v1/service-accounts/{U}", ("admin:write",), None),
    ("POST", f"/api/v1/service-accounts/{U}/rotate-secret", ("admin:write",), None),
    ("POST", "/api/v1/storage-elements/discover", ("storage:write",), {"url": "http://x"}),
    # Registering an SE needs admin:write (issue 13: an SE receives tokens).
    ("POST", "/api/v1/storage-elements", ("admin:write",), {"url": "http://x"}),
    ("GET", "/api/v1/storage-elements", ("storage:read",), None),
    ("GET", f"/api/v1/storage-elements/{SE}", ("storage:read",), None),
    ("PATCH", f"/api/v1/storage-elements/{SE}", ("storage:write",), {"name": "x"}),
    ("DELETE", f"/api/v1/storage-elements/{SE}", ("storage:write",), None),
    ("POST", f"/api/v1/storage-elements/{SE}/mode", ("storage:write",), {"target_mode": "ro"}),
    ("POST", f"/api/v1/storage-elements/{SE}/refresh", ("storage:write",), None),
    ("GET", "/api/v1/admin/files", ("files:read",), None),
    ("GET", f"/api/v1/admin/files/{U}", ("files:read",), None),
    ("DELETE", f"/api/v1/admin/files/{U}", ("files:delete",), None),
    ("GET", "/api/v1/audit", ("audit:read",), None),
    ("GET", "/api/v1/audit/verify", ("audit:read",), None),
    ("GET", "/api/v1/jobs", ("admin:read",), None),
    ("GET", "/api/v1/jobs/1", ("admin:read",), None),
    ("POST", "/api/v1/jobs/1/cancel", ("admin:write",), None),
    ("POST", "/api/v1/jobs/1/retry", ("admin:write",), None),
]

_tokens: dict[frozenset[str], str] = {}


def _token_without(admin: AdminUnderTest, scopes: tuple[str, ...]) -> str:
    """A service account holding every scope except these."""
    key = frozenset(scopes)
    if key not in _tokens:
        _tokens[key] = admin.sa_token([s for s in ALL_SCOPES if s not in key])
    return _tokens[key]


@pytest.mark.parametrize(
    ("method", "path", "scopes", "body"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX]
)
def test_row(
    admin: AdminUnderTest, method: str, path: str, scopes: tuple[str, ...] | None, body: Any
) -> None:
    with admin.client() as anon:
        r = anon.request(method, path, json=body)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "UNAUTHORIZED"
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = anon.request(method, path, json=body, headers={"Authorization": "Bearer x.y.z"})
        assert r.status_code == 401
    if scopes is None:
        with admin.client(admin.sa_token([])) as c:  # no scope at all is still a caller
            assert c.request(method, path, json=body).status_code == 200
        return
    with admin.client(_token_without(admin, scopes)) as c:
        r = c.request(method, path, json=body)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "FORBIDDEN"


def test_change_password_is_for_users_only(admin: AdminUnderTest) -> None:
    with admin.client(admin.sa_token(list(ALL_SCOPES))) as c:
        r = c.post(
            "/api/v1/auth/change-password",
            json={"current_password": "x" * 12, "new_password": "y" * 12},
        )
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    with admin.client() as anon:
        assert anon.post("/api/v1/auth/change-password", json={}).status_code == 401


# role -> (allowed, refused) among representative reads and writes
ROLES: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    "admin": (
        [("GET", "/api/v1/users"), ("GET", "/api/v1/audit"), ("GET", "/api/v1/storage-elements"),
         ("GET", "/api/v1/admin/files")],
        [],
    ),
    "operator": (
        [
            ("GET", "/api/v1/users"),
            ("GET", "/api/v1/storage-elements"),
            ("GET", "/api/v1/admin/files"),
        ],
        [("POST", "/api/v1/users"), ("GET", "/api/v1/audit"), ("POST", "/api/v1/auth/keys/rotate")],
    ),
    "user": (
        [("GET", "/api/v1/admin/files")],
        [("GET", "/api/v1/users"), ("GET", "/api/v1/storage-elements"), ("GET", "/api/v1/audit"),
         ("DELETE", f"/api/v1/admin/files/{U}")],
    ),
    "auditor": (
        [("GET", "/api/v1/audit"), ("GET", "/api/v1/users"), ("GET", "/api/v1/storage-elements"),
         ("GET", "/api/v1/admin/files")],
        [("POST", "/api/v1/users"), ("POST", "/api/v1/storage-elements/discover"),
         ("DELETE", f"/api/v1/admin/files/{U}")],
    ),
}  # fmt: skip

EXPECTED_SCOPES = {
    "admin": set(ALL_SCOPES),
    "operator": {"files:read", "files:write", "files:delete", "storage:read", "storage:write",
                 "admin:read"},
    "user": {"files:read", "files:write"},
    "auditor": {"files:read", "storage:read", "admin:read", "audit:read"},
}  # fmt: skip


@pytest.mark.parametrize("role", sorted(ROLES))
def test_role(admin: AdminUnderTest, role: str) -> None:
    token = admin.user_token([role])
    allowed, refused = ROLES[role]
    with admin.client(token) as c:
        assert set(c.get("/api/v1/auth/me").json()["scopes"]) == EXPECTED_SCOPES[role]
        for method, path in allowed:
            assert c.request(method, path).status_code == 200, (role, method, path)
        for method, path in refused:
            r = c.request(method, path, json={})
            assert r.status_code == 403, (role, method, path, r.text)
