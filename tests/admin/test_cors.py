"""The admin answers browsers of the system's own services only (issue 13, finding 6):
AM_CORS_ORIGINS defaults to the origins of `artstore up`'s services, not `*`."""

from __future__ import annotations

import pytest

from tests.support.admin import AdminUnderTest

PREFLIGHT = {"Access-Control-Request-Method": "POST"}


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1:9999", "null"])
def test_a_foreign_origin_gets_no_cors_grant(admin: AdminUnderTest, origin: str) -> None:
    with admin.client() as c:
        pre = c.options("/api/v1/auth/token", headers={"Origin": origin, **PREFLIGHT})
        get = c.get("/.well-known/jwks.json", headers={"Origin": origin})
    assert "access-control-allow-origin" not in pre.headers
    assert pre.status_code == 400  # Starlette's answer to a disallowed preflight
    assert get.status_code == 200
    assert "access-control-allow-origin" not in get.headers


# What Chromium's preflight asks for when Swagger UI requests a token (issue 17): its
# fetch adds X-Requested-With, and Authorization carries the client's Basic credentials.
# (The browser test, tests/browser/test_swagger_ui.py, sends the real one.)
SWAGGER_HEADERS = "authorization,x-requested-with"


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8030", "http://localhost:8010"])
def test_the_systems_own_swagger_ui_may_get_a_token(admin: AdminUnderTest, origin: str) -> None:
    asked = {**PREFLIGHT, "Access-Control-Request-Headers": SWAGGER_HEADERS}
    with admin.client() as c:
        pre = c.options("/api/v1/auth/token", headers={"Origin": origin, **asked})
    assert pre.status_code == 200, pre.text
    assert pre.headers["access-control-allow-origin"] == origin
    allowed = {h.strip().lower() for h in pre.headers["access-control-allow-headers"].split(",")}
    assert set(SWAGGER_HEADERS.split(",")) <= allowed
