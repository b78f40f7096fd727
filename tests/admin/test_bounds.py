"""Issue 13 findings 3 and 4 at the admin: every client mistake is a 4xx with the error
envelope (NUL, null, offsets past int64, a megabyte username), and requests are bounded
(body, form fields, head) — against a running admin process."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from artstore.common.limits import DEFAULT_MAX_BODY_BYTES, MAX_FORM_FIELDS, MAX_HEAD_BYTES
from artstore.common.pagination import MAX_OFFSET
from tests.support.admin import AdminUnderTest
from tests.support.raw_http import send_raw

_JSON = {"Content-Type": "application/json"}


def _envelope(r: httpx.Response, status: int, code: str = "VALIDATION_ERROR") -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = dict(r.json())
    assert body["error"]["code"] == code, body
    return body


def _list_paths(admin: AdminUnderTest) -> list[str]:
    spec = httpx.get(f"{admin.url}/openapi.json", timeout=30).json()
    return [
        path
        for path, ops in spec["paths"].items()
        if "get" in ops and any(p["name"] == "offset" for p in ops["get"].get("parameters", []))
    ]


def test_openapi_documents_400_not_422(admin: AdminUnderTest) -> None:
    spec = httpx.get(f"{admin.url}/openapi.json", timeout=30).json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)
            assert "400" in op["responses"], (method, path)


def test_offset_beyond_int64_on_every_list_is_400(admin: AdminUnderTest, admin_token: str) -> None:
    paths = _list_paths(admin)
    assert "/api/v1/users" in paths and "/api/v1/audit" in paths
    with admin.client(admin_token) as c:
        for path in paths:
            for offset in (2**63, 2**64 + 5, MAX_OFFSET + 1, -1):
                r = c.get(path, params={"offset": offset})
                _envelope(r, 400)
            assert c.get(path, params={"offset": MAX_OFFSET}).status_code == 200, path


def test_nul_in_user_and_account_fields_is_400(admin: AdminUnderTest, admin_token: str) -> None:
    name = f"u-{uuid.uuid4().hex[:10]}"
    with admin.client(admin_token) as c:
        for field in ("full_name", "email"):
            r = c.post(
                "/api/v1/users",
                json={"username": name, "password": "correct horse battery", field: "a\x00b"},
            )
            _envelope(r, 400)
        r = c.post(
            "/api/v1/users",
            json={"username": "a\x00b", "password": "correct horse battery"},
        )
        _envelope(r, 400)
        user = admin.create_user(["user"])
        for body in ({"full_name": "x\x00"}, {"email": "\ud800@x"}, {"full_name": "\x1b[2J"}):
            # json.dumps escapes a lone surrogate as \ud800 (httpx would refuse to encode it).
            r = c.patch(f"/api/v1/users/{user['id']}", content=json.dumps(body), headers=_JSON)
            _envelope(r, 400)
        r = c.post("/api/v1/service-accounts", json={"name": "a\x00", "scopes": []})
        _envelope(r, 400)
        r = c.post(
            "/api/v1/service-accounts",
            json={"name": f"sa-{uuid.uuid4().hex[:8]}", "scopes": [], "description": "\x00"},
        )
        _envelope(r, 400)
        sa = admin.create_sa(["files:read"])
        _envelope(
            c.patch(f"/api/v1/service-accounts/{sa['id']}", json={"description": "\x00"}), 400
        )
        # Mode fields and filters: never a 5xx.
        for params in ({"mode": "r\x00w"}, {"status": "\x00"}):
            r = c.get("/api/v1/storage-elements", params=params)
            _envelope(r, 400)
        r = c.post("/api/v1/storage-elements/se-x/mode", json={"target_mode": "r\x00o"})
        assert 400 <= r.status_code < 500, r.text
        for params in ({"actor": "a\x00"}, {"target_id": "\x00"}, {"action": "\x00"}):
            r = c.get("/api/v1/audit", params=params)
            assert 400 <= r.status_code < 500, (params, r.text)
        r = c.get("/api/v1/admin/files", params={"uploaded_by": "a\x00"})
        assert 400 <= r.status_code < 500, r.text
        # An id that cannot be a row's id is not a database error either.
        for path in ("/api/v1/users/%00", "/api/v1/service-accounts/not-a-uuid"):
            assert 400 <= c.get(path).status_code < 500, path


def test_null_where_a_value_is_required_is_400(admin: AdminUnderTest, admin_token: str) -> None:
    user = admin.create_user(["user"])
    sa = admin.create_sa(["files:read"])
    with admin.client(admin_token) as c:
        for body in ({"status": None}, {"roles": None}):
            _envelope(c.patch(f"/api/v1/users/{user['id']}", json=body), 400)
        for body in ({"status": None}, {"name": None}, {"description": None}, {"scopes": None}):
            _envelope(c.patch(f"/api/v1/service-accounts/{sa['id']}", json=body), 400)
        # A nullable field may still be cleared.
        r = c.patch(f"/api/v1/users/{user['id']}", json={"full_name": None})
        assert r.status_code == 200, r.text
        assert c.get(f"/api/v1/users/{user['id']}").json()["status"] == "active"


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "http://",
        "http://[::1",
        "http://host:99999999999",
        "http://a\x00b:8010",
        "ftp://127.0.0.1:8010",
        "http://" + "a" * 3000,
    ],
)
def test_malformed_se_urls_are_4xx(admin: AdminUnderTest, admin_token: str, url: str) -> None:
    with admin.client(admin_token) as c:
        for path in ("/api/v1/storage-elements", "/api/v1/storage-elements/discover"):
            r = c.post(path, json={"url": url})
            assert 400 <= r.status_code < 500, (path, url, r.text)
            assert "error" in r.json()


def test_token_request_with_nul_or_megabyte_username_is_4xx_and_audited(
    admin: AdminUnderTest, admin_token: str
) -> None:
    for username in ("adm\x00in", "x" * 1_000_000):
        r = admin.token_request(
            {"grant_type": "password", "username": username, "password": "nope-nope-nope"}
        )
        assert 400 <= r.status_code < 500, r.text[:300]
        assert r.json()["error"] in ("invalid_request", "invalid_grant"), r.text[:300]
    rows = admin.sql(
        "SELECT actor, details FROM admin.audit_log WHERE action = 'login.failure' "
        "AND actor LIKE 'xxxx%' ORDER BY seq DESC LIMIT 1"
    )
    assert rows, "the megabyte username's attempt was not audited"
    assert len(rows[0]["actor"]) < 1024


# -- bounded requests ------------------------------------------------------------------------
def test_json_body_over_the_limit_is_413_without_being_read(
    admin: AdminUnderTest, admin_token: str
) -> None:
    user = admin.create_user(["user"])
    size = 13 * 1024 * 1024
    head = (
        f"PATCH /api/v1/users/{user['id']} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {admin_token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    # Only the first 64 KiB are ever sent: the answer must come without the rest.
    answer = send_raw(admin.url, head, b'{"full_name": "' + b"a" * 65536)
    assert answer.status == 413
    assert answer.json()["error"]["code"] == "BODY_TOO_LARGE"
    assert answer.json()["error"]["details"]["max_bytes"] == DEFAULT_MAX_BODY_BYTES


def test_chunked_body_over_the_limit_is_413(admin: AdminUnderTest, admin_token: str) -> None:
    def chunks() -> Any:
        piece = b"a" * 65536
        yield b'{"full_name": "'
        for _ in range(40):  # 2.5 MiB, no Content-Length
            yield piece

    user = admin.create_user(["user"])
    with admin.client(admin_token) as c:
        r = c.patch(
            f"/api/v1/users/{user['id']}",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
    _envelope(r, 413, "BODY_TOO_LARGE")


def test_form_with_too_many_fields_is_413(admin: AdminUnderTest) -> None:
    fields = {f"f{i}": "x" for i in range(1000)}
    r = admin.token_request({"grant_type": "password", "username": "a", "password": "b", **fields})
    _envelope(r, 413, "BODY_TOO_LARGE")
    fields = {f"f{i}": "x" for i in range(MAX_FORM_FIELDS - 3)}
    r = admin.token_request({"grant_type": "password", "username": "a", "password": "b", **fields})
    assert r.status_code in (400, 401), r.text  # read and answered by the grant itself


def test_form_of_a_megabyte_per_field_is_413(admin: AdminUnderTest) -> None:
    r = admin.token_request(
        {"grant_type": "password", "username": "a", "password": "b" * (2 * 1024 * 1024)}
    )
    _envelope(r, 413, "BODY_TOO_LARGE")


def test_megabyte_header_is_431(admin: AdminUnderTest) -> None:
    head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    answer = send_raw(admin.url, head)
    assert answer.status == 431
    assert answer.json()["error"]["code"] == "HEADERS_TOO_LARGE"
    # A head within the limit is served, on the same server.
    ok = send_raw(
        admin.url,
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
        + b"a" * (MAX_HEAD_BYTES // 2)
        + b"\r\n\r\n",
    )
    assert ok.status == 200
