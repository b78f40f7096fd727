"""The console's sign-in (issue 17): OAuth 2.0 authorization code with PKCE against the
admin's own login page, driven by authlib's client as a generic client would, the login
form by httpx as the browser would send it. Every refusal the RFCs ask for is checked:
wrong verifier, reused code, expired code, another redirect URI, unknown client, plain
PKCE, credentials and CSRF on the form, throttling, refresh and revocation."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from tests.support.admin import AdminUnderTest, claims_of
from tests.support.database import TestDatabase

pytestmark = pytest.mark.process

WELL_KNOWN = "/.well-known/oauth-authorization-server"
AUTHORIZE = "/api/v1/auth/authorize"
REQUEST_FIELD = re.compile(r'name="request" value="([^"]+)"')


@pytest.fixture(scope="module")
def am(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminUnderTest]:
    """An admin whose public URL is where it is reached (AM_PUBLIC_URL unset): its console
    callback is a loopback URL it registers by default."""
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_oauth_code")
    admin = AdminUnderTest(tmp_path_factory.mktemp("admin-code"), db, AM_PUBLIC_URL="")
    try:
        yield admin.start()
    finally:
        admin.process.stop()
        db.drop()


@pytest.fixture(scope="module")
def doc(am: AdminUnderTest) -> dict[str, Any]:
    r = httpx.get(f"{am.url}{WELL_KNOWN}", timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def callback(am: AdminUnderTest) -> str:
    return f"{am.url}/console/callback"


def verifier() -> str:
    return secrets.token_urlsafe(48)


def authorize_url(am: AdminUnderTest, **params: str) -> str:
    base = {
        "response_type": "code",
        "client_id": "console",
        "redirect_uri": callback(am),
        "code_challenge": create_s256_code_challenge(verifier()),
        "code_challenge_method": "S256",
        "state": "st-" + uuid.uuid4().hex,
    }
    base.update(params)
    return f"{am.url}{AUTHORIZE}?{urlencode({k: v for k, v in base.items() if v != '-'})}"


def sign_in(browser: httpx.Client, url: str, username: str, password: str) -> httpx.Response:
    """What a browser does: open the page, fill in the form, send it."""
    page = browser.get(url)
    assert page.status_code == 200, page.text
    match = REQUEST_FIELD.search(page.text)
    assert match is not None, page.text
    return browser.post(
        page.url.copy_with(query=None),
        data={"request": match.group(1), "username": username, "password": password},
    )


def code_of(response: httpx.Response, am: AdminUnderTest) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(callback(am) + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def browser() -> httpx.Client:
    return httpx.Client(timeout=30, follow_redirects=False)


def console(doc: dict[str, Any], am: AdminUnderTest, scope: str | None = None) -> OAuth2Session:
    return OAuth2Session(
        "console",
        redirect_uri=callback(am),
        scope=scope,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


def redeem(am: AdminUnderTest, code: str, code_verifier: str, **extra: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback(am),
        "client_id": "console",
        "code_verifier": code_verifier,
        **extra,
    }
    return am.token_request(data)


def fresh_code(am: AdminUnderTest, user: dict[str, Any], **params: str) -> tuple[str, str]:
    v = verifier()
    url = authorize_url(am, code_challenge=create_s256_code_challenge(v), **params)
    with browser() as b:
        got = code_of(sign_in(b, url, user["username"], user["password"]), am)
    return got["code"], v


# -- discovery -----------------------------------------------------------------------------
def test_metadata_names_the_code_flow(am: AdminUnderTest, doc: dict[str, Any]) -> None:
    AuthorizationServerMetadata(doc).validate()
    assert doc["authorization_endpoint"] == f"{am.url}{AUTHORIZE}"
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in doc["grant_types_supported"]
    assert "none" in doc["token_endpoint_auth_methods_supported"]
    assert not any(key.startswith("id_token") for key in doc)
    assert httpx.get(f"{am.url}/.well-known/openid-configuration").status_code == 404


# -- the whole flow with authlib -------------------------------------------------------------
def test_code_flow_with_pkce_refresh_and_revoke(am: AdminUnderTest, doc: dict[str, Any]) -> None:
    user = am.create_user(["user"])
    code_verifier = verifier()
    # authlib asks again for its scope when it refreshes: only scopes the user holds.
    with console(doc, am, scope="files:read files:write") as client:
        url, state = client.create_authorization_url(
            doc["authorization_endpoint"], code_verifier=code_verifier
        )
        assert "code_challenge=" in url and "code_challenge_method=S256" in url
        with browser() as b:
            page = b.get(url)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            csp = page.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
            assert "script" not in page.text.lower()  # no script, no external asset
            assert not re.search(r"(src|href)=\"https?:", page.text)
            assert '<label for="username">' in page.text and 'id="password"' in page.text
            assert 'name="viewport"' in page.text
            sent = sign_in(b, url, user["username"], user["password"])
        location = sent.headers["location"]
        got = code_of(sent, am)
        assert got["state"] == state
        assert got["iss"] == doc["issuer"]  # RFC 9207
        token = client.fetch_token(
            doc["token_endpoint"], authorization_response=location, code_verifier=code_verifier
        )
        assert token["scope"] == "files:read files:write"
        claims = claims_of(token["access_token"])
        assert claims["sub"] == user["username"] and claims["kind"] == "user"
        assert "id_token" not in token
        me = client.get(f"{am.url}/api/v1/auth/me", timeout=30)
        assert me.status_code == 200, me.text
        assert me.json()["sub"] == user["username"]
        # Refresh without a secret (public client), rotated.
        first_refresh = token["refresh_token"]
        renewed = client.refresh_token(doc["token_endpoint"], refresh_token=first_refresh)
        assert renewed["refresh_token"] != first_refresh
        assert renewed["scope"] == "files:read files:write"
        # Sign-out: revoke the refresh token; it no longer refreshes.
        revoked = client.revoke_token(doc["revocation_endpoint"], token=renewed["refresh_token"])
        assert revoked.status_code == 200
        with pytest.raises(OAuthError) as caught:
            client.refresh_token(doc["token_endpoint"], refresh_token=renewed["refresh_token"])
        assert caught.value.error == "invalid_grant"


def test_a_password_grant_user_signs_in_with_every_scope_when_none_is_asked(
    am: AdminUnderTest,
) -> None:
    user = am.create_user(["auditor"])
    code, v = fresh_code(am, user)
    r = redeem(am, code, v)
    assert r.status_code == 200, r.text
    assert set(r.json()["scope"].split()) == {
        "files:read",
        "storage:read",
        "admin:read",
        "audit:read",
    }
    assert r.headers["cache-control"] == "no-store"


def test_scopes_are_the_users_intersected_with_those_asked(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    code, v = fresh_code(am, user, scope="files:read admin:write")
    r = redeem(am, code, v)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "files:read"  # admin:write is not the user's


# -- refusals at the token endpoint ----------------------------------------------------------
def test_wrong_verifier_is_refused_and_consumes_the_code(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    code, v = fresh_code(am, user)
    r = redeem(am, code, verifier())
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    assert "code_verifier" in r.json()["error_description"]
    # No second guess: the right verifier now finds the code used.
    again = redeem(am, code, v)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_malformed_verifier_is_invalid_request(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    code, _ = fresh_code(am, user)
    r = redeem(am, code, "short")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_reused_code_revokes_what_it_gave(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    code, v = fresh_code(am, user)
    first = redeem(am, code, v)
    assert first.status_code == 200, first.text
    second = redeem(am, code, v)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert "already used" in second.json()["error_description"]
    # RFC 6749 §4.1.2: the refresh token issued from the code is revoked.
    refreshed = am.token_request(
        {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]}
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    audit = am.sql(
        "SELECT details FROM admin.audit_log WHERE action = 'login.failure' "
        "AND details->>'reason' = 'authorization code reused'"
    )
    assert audit


def test_expired_code_is_refused(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    code, v = fresh_code(am, user)
    rows = am.sql("SELECT expires_at - created_at AS ttl FROM admin.authorization_codes")
    assert rows and all(r["ttl"].total_seconds() <= 60 for r in rows)
    # Only the hash is stored.
    assert not am.sql("SELECT 1 FROM admin.authorization_codes WHERE code_hash = $1", code)
    am.sql(
        "UPDATE admin.authorization_codes SET expires_at = now() - interval '1 second' "
        "WHERE used_at IS NULL"
    )
    r = redeem(am, code, v)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert "expired" in r.json()["error_description"]


def test_another_redirect_uri_is_refused(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    code, v = fresh_code(am, user)
    r = redeem(am, code, v, redirect_uri=f"{am.url}/console/elsewhere")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert "redirect_uri" in r.json()["error_description"]


def test_only_the_console_redeems_without_a_secret(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    code, v = fresh_code(am, user)
    r = redeem(am, code, v, client_id="someone-else")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = redeem(am, code, v, client_secret="anything")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = am.token_request({"grant_type": "authorization_code", "client_id": "console"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # The code was never looked at by those: it still works.
    assert redeem(am, code, v).status_code == 200


def test_a_made_up_code_is_invalid_grant(am: AdminUnderTest) -> None:
    r = redeem(am, secrets.token_urlsafe(32), verifier())
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_a_disabled_user_cannot_redeem(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    code, v = fresh_code(am, user)
    with am.client(am.admin_token()) as c:
        r = c.patch(f"/api/v1/users/{user['id']}", json={"status": "disabled"})
    assert r.status_code == 200, r.text
    r = redeem(am, code, v)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


# -- refusals at the authorization endpoint --------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "unknown"},
        {"client_id": "-"},
        {"redirect_uri": "https://evil.example/console/callback"},
        {"redirect_uri": "-"},
    ],
)
def test_unknown_client_or_redirect_uri_is_an_error_page(
    am: AdminUnderTest, params: dict[str, str]
) -> None:
    with browser() as b:
        r = b.get(authorize_url(am, **params))
    assert r.status_code == 400
    assert "location" not in r.headers  # never redirected to an unregistered URI
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "evil.example" not in r.text


@pytest.mark.parametrize(
    ("params", "error", "said"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request", "S256"),
        ({"code_challenge_method": "-"}, "invalid_request", "S256"),
        ({"code_challenge": "-"}, "invalid_request", "code_challenge"),
        ({"code_challenge": "x" * 20}, "invalid_request", "code_challenge"),
        ({"response_type": "token"}, "unsupported_response_type", "code"),
        ({"response_type": "-"}, "invalid_request", "response_type"),
        ({"scope": "openid files:read"}, "invalid_scope", "openid"),
    ],
)
def test_other_errors_go_back_to_the_client(
    am: AdminUnderTest, params: dict[str, str], error: str, said: str
) -> None:
    url = authorize_url(am, state="keep-me", **params)
    with browser() as b:
        r = b.get(url)
    got = code_of(r, am)
    assert got["error"] == error
    assert said in got["error_description"]
    assert got["state"] == "keep-me"
    assert "code" not in got


def test_a_repeated_parameter_is_refused(am: AdminUnderTest) -> None:
    url = authorize_url(am, state="s1") + "&code_challenge_method=plain"
    with browser() as b:
        r = b.get(url)
    assert code_of(r, am)["error"] == "invalid_request"


def test_loopback_variants_are_registered(am: AdminUnderTest) -> None:
    other = callback(am).replace("127.0.0.1", "localhost")
    with browser() as b:
        r = b.get(authorize_url(am, redirect_uri=other))
    assert r.status_code == 200, r.text


# -- the login form --------------------------------------------------------------------------
def test_bad_credentials_show_the_page_again_without_enumeration(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    answers = []
    with browser() as b:
        for name, password in [
            (user["username"], "wrong password here"),
            (f"nobody-{uuid.uuid4().hex[:8]}", "wrong password here"),
            ("x\x00y", "whatever"),
        ]:
            r = sign_in(b, authorize_url(am), name, password)
            assert r.status_code == 400
            assert "location" not in r.headers
            assert 'role="alert"' in r.text
            answers.append(re.search(r'role="alert">([^<]*)<', r.text).group(1))  # type: ignore[union-attr]
    assert len(set(answers)) == 1
    assert "invalid username or password" in answers[0].lower()


def test_the_form_needs_the_cookie_of_its_page(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    with browser() as b:
        page = b.get(authorize_url(am))
        sealed = REQUEST_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    form = {"request": sealed, "username": user["username"], "password": user["password"]}
    # Posted from another browser (a cross-site form): no cookie, no code.
    with browser() as other:
        r = other.post(f"{am.url}{AUTHORIZE}", data=form)
    assert r.status_code == 400 and "location" not in r.headers
    # A tampered request is refused as well.
    with browser() as b:
        b.get(authorize_url(am))
        flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
        r = b.post(f"{am.url}{AUTHORIZE}", data={**form, "request": flipped})
        assert r.status_code == 400 and "location" not in r.headers
        r = b.post(f"{am.url}{AUTHORIZE}", data={**form, "request": ""})
        assert r.status_code == 400 and "location" not in r.headers
        r = b.post(f"{am.url}{AUTHORIZE}", json=form)
        assert r.status_code == 400 and "location" not in r.headers


def test_the_form_locks_out_like_the_password_grant(am: AdminUnderTest) -> None:
    """AM_LOGIN_MAX_FAILURES (5) failures in a row lock (username, address): the right
    password is then refused too, with the same message, and the lock is audited."""
    user = am.create_user(["user"])
    with browser() as b:
        for _ in range(5):
            assert sign_in(b, authorize_url(am), user["username"], "wrong-wrong").status_code == 400
        locked = sign_in(b, authorize_url(am), user["username"], user["password"])
    assert locked.status_code == 400 and "location" not in locked.headers
    rows = am.sql(
        "SELECT details FROM admin.audit_log WHERE action = 'login.failure' AND actor = $1",
        user["username"],
    )
    assert any("locked" in str(r["details"]) for r in rows)


def test_the_form_is_throttled_per_address(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_oauth_throttle")
    admin = AdminUnderTest(
        tmp_path_factory.mktemp("admin-throttle"),
        db,
        AM_PUBLIC_URL="",
        AM_LOGIN_ADDRESS_BURST="2",
        AM_LOGIN_ADDRESS_PER_MINUTE="0.01",
    )
    try:
        admin.start()
        with browser() as b:
            statuses = [
                sign_in(b, authorize_url(admin), f"nobody-{i}", "wrong-wrong").status_code
                for i in range(3)
            ]
            assert statuses == [400, 400, 429]
            r = sign_in(b, authorize_url(admin), "admin", "bootstrap-admin-pw-123")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        assert "Too many sign-in attempts" in r.text
        assert "location" not in r.headers
    finally:
        admin.process.stop()
        db.drop()


def test_a_user_without_any_asked_scope_is_sent_back_access_denied(am: AdminUnderTest) -> None:
    user = am.create_user(["user"])
    with browser() as b:
        r = sign_in(b, authorize_url(am, scope="audit:read", state="s"), user["username"],
                    user["password"])  # fmt: skip
    got = code_of(r, am)
    assert got["error"] == "access_denied" and got["state"] == "s"


# -- in a real browser ----------------------------------------------------------------------
def test_the_sign_in_page_in_chromium_at_phone_width_keyboard_only(am: AdminUnderTest) -> None:
    """Chromium applies the page's CSP: its hashed style must load, no script is needed,
    and `form-action` must let the POST's redirect reach the client's redirect URI."""
    from playwright.sync_api import expect

    from tests.support.chromium import off_loopback, offline_chromium

    user = am.create_user(["user"])
    code_verifier = verifier()
    url = authorize_url(am, code_challenge=create_s256_code_challenge(code_verifier), state="phone")
    problems: list[str] = []
    requests: list[str] = []
    with offline_chromium() as chromium:
        ctx = chromium.new_context(
            viewport={"width": 360, "height": 640}, java_script_enabled=False
        )
        ctx.set_default_timeout(60_000)
        ctx.on("request", lambda r: requests.append(r.url))
        page = ctx.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(url)
        expect(page.get_by_role("heading", name="Sign in to ArtStore")).to_be_visible()
        username = page.get_by_label("Username")
        expect(username).to_be_focused()
        # Styled: the CSP admitted the page's own stylesheet (a full-width button).
        width = page.get_by_role("button", name="Sign in").bounding_box()
        assert width is not None and width["width"] > 250
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.keyboard.type(user["username"])
        page.keyboard.press("Tab")
        page.keyboard.type("not the password")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("Invalid username or password")
        expect(page.get_by_label("Password")).to_be_focused()
        page.keyboard.type(user["password"])
        with page.expect_request(lambda r: r.url.startswith(callback(am))) as went:
            page.keyboard.press("Enter")
        landed = went.value.url
        ctx.close()
    got = {k: v[0] for k, v in parse_qs(urlsplit(landed).query).items()}
    assert got["state"] == "phone"
    assert not [p for p in problems if "Content Security Policy" in p], problems
    assert off_loopback(requests) == []
    assert redeem(am, got["code"], code_verifier).status_code == 200
