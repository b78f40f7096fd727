"""OAuth as a generic client sees it (issue 17): RFC 8414 metadata that authlib validates,
the issuer a URL (the admin's public URL) in the metadata and in every token, the client
credentials grant through authlib's own client, and no OpenID Connect claimed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc import jwt
from joserfc.jwk import KeySet
from pydantic import ValidationError

from artstore.admin.settings import AMSettings
from artstore.common.settings import ServiceSettings
from tests.support.admin import ISSUER, AdminUnderTest, claims_of
from tests.support.database import TestDatabase

pytestmark = pytest.mark.process

WELL_KNOWN = "/.well-known/oauth-authorization-server"


@pytest.fixture(scope="module")
def reachable(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminUnderTest]:
    """An admin whose public URL is the address it is reached at (AM_PUBLIC_URL unset):
    discovery leads a client to endpoints it can call."""
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_oauth_meta")
    am = AdminUnderTest(tmp_path_factory.mktemp("admin-reachable"), db, AM_PUBLIC_URL="")
    try:
        yield am.start()
    finally:
        am.process.stop()
        db.drop()


def _metadata(admin: AdminUnderTest) -> dict[str, Any]:
    r = httpx.get(f"{admin.url}{WELL_KNOWN}", timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_metadata_behind_a_proxy_validates(admin: AdminUnderTest) -> None:
    doc = _metadata(admin)
    AuthorizationServerMetadata(doc).validate()
    assert doc["issuer"] == ISSUER
    assert doc["token_endpoint"] == f"{ISSUER}/api/v1/auth/token"
    assert doc["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    # The console's sign-in: code + PKCE (S256 only) at the admin's own login page
    # (tests/admin/test_authorization_code.py).
    assert doc["authorization_endpoint"] == f"{ISSUER}/api/v1/auth/authorize"
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"client_credentials", "authorization_code"} <= set(doc["grant_types_supported"])
    assert claims_of(admin.admin_token())["iss"] == ISSUER


def test_no_openid_provider_is_claimed(admin: AdminUnderTest) -> None:
    assert httpx.get(f"{admin.url}/.well-known/openid-configuration").status_code == 404
    doc = _metadata(admin)
    assert "openid" not in doc["scopes_supported"]
    assert not any(key.startswith("id_token") for key in doc)
    sa = admin.create_sa(["files:read"])
    r = admin.token_request(
        {"grant_type": "client_credentials", "scope": "openid"},
        auth=(sa["client_id"], sa["client_secret"]),
    )
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_scope"
    assert "openid" in body["error_description"]
    assert "ID token" in body["error_description"]


def test_client_credentials_through_authlib(reachable: AdminUnderTest) -> None:
    doc = _metadata(reachable)
    AuthorizationServerMetadata(doc).validate()  # loopback http is allowed by RFC 8252
    assert doc["issuer"] == reachable.url
    sa = reachable.create_sa(["files:read", "files:write"])
    with OAuth2Session(
        sa["client_id"],
        sa["client_secret"],
        scope="files:read",
        token_endpoint_auth_method="client_secret_basic",
    ) as client:
        token = client.fetch_token(doc["token_endpoint"], grant_type="client_credentials")
        assert token["token_type"].lower() == "bearer"
        assert token["scope"] == "files:read"
        me = client.get(f"{reachable.url}/api/v1/auth/me", timeout=30)
        assert me.status_code == 200, me.text
        assert me.json()["sub"] == sa["client_id"]
    # The token verifies against the keys the metadata names, with the metadata's issuer.
    keys = KeySet.import_key_set(httpx.get(doc["jwks_uri"], timeout=30).json())
    decoded = jwt.decode(token["access_token"], keys, algorithms=["RS256"])
    # leeway: `iat` carries milliseconds (revocations compare it) and joserfc compares it
    # with the whole second it is in, so a token is "from the future" for up to a second.
    registry = jwt.JWTClaimsRegistry(leeway=1, iss={"essential": True, "value": doc["issuer"]})
    registry.validate(decoded.claims)


def test_authlib_sees_the_scope_error(reachable: AdminUnderTest) -> None:
    doc = _metadata(reachable)
    sa = reachable.create_sa(["files:read"])
    with (
        OAuth2Session(sa["client_id"], sa["client_secret"], scope="openid files:read") as client,
        pytest.raises(OAuthError) as caught,
    ):
        client.fetch_token(doc["token_endpoint"], grant_type="client_credentials")
    assert caught.value.error == "invalid_scope"
    assert "openid" in str(caught.value.description)


# -- settings ------------------------------------------------------------------------------
def test_issuer_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("JWT_ISSUER", "AM_PUBLIC_URL", "ADMIN_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    assert AMSettings(admin_url="http://10.0.0.5:8000/").issuer == "http://10.0.0.5:8000"
    # Every other service expects that same derived issuer unless told otherwise.
    assert ServiceSettings(admin_url="http://10.0.0.5:8000/").jwt_issuer == "http://10.0.0.5:8000"
    given = AMSettings(admin_url="http://admin:8000", public_url="https://as.example/")
    assert (given.issuer, given.jwt_issuer) == ("https://as.example", "https://as.example")
    monkeypatch.setenv("JWT_ISSUER", "https://shared.example")
    assert AMSettings(admin_url="http://admin:8000").issuer == "https://shared.example"
    with pytest.raises(ValidationError, match="differs"):
        AMSettings(public_url="https://other.example")
    monkeypatch.delenv("JWT_ISSUER")
    for bad in ("artstore", "https://as.example/?x=1", "ftp://as.example"):
        with pytest.raises(ValidationError, match="issuer"):
            AMSettings(public_url=bad)
