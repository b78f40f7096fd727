"""The authorization endpoint (RFC 6749 §4.1 with PKCE, RFC 7636): the admin's own
sign-in page for the console (issue 17; decisions in docs/security.md).

``GET /api/v1/auth/authorize`` checks the request and shows the page; the page's form
``POST``s to the same path. The form carries the authorization request sealed (AES-GCM
under the key-encryption key, so it is opaque and cannot be altered) together with the
hash of a random cookie the GET set: a form posted from elsewhere lacks that cookie, and
a form from another sign-in carries another request. Credentials go through the same
``users.login`` as the password grant: its throttling, lockout, status checks, audit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from artstore.admin.auth import bounds, codes
from artstore.admin.auth.errors import OAuthError
from artstore.admin.auth.login_page import error_page, sign_in_page
from artstore.admin.auth.throttle import client_address
from artstore.admin.keys.crypto import KeyEncryption
from artstore.admin.passwords import RateLimited
from artstore.admin.roles import scopes_for
from artstore.admin.state import DbSession, State
from artstore.admin.users import service as users
from artstore.admin.users.service import REFUSED
from artstore.common.auth import ALL_SCOPES
from artstore.common.cors import origin_of

router = APIRouter(tags=["auth"])

PATH = "/api/v1/auth/authorize"
COOKIE = "artstore_signin"
_SEAL_ID = "artstore-signin-request"  # the AES-GCM associated data: not a signing key's kid
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_STATE_BYTES = 1024
MAX_SCOPE_BYTES = 1024
CLIENT_NAMES = {codes.CONSOLE: "ArtStore console"}


@dataclass(frozen=True)
class SignInRequest:
    """An authorization request that passed its checks, as the form carries it."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    state: str | None
    scope: str | None
    binding: str  # SHA-256 of the cookie
    expires: float

    def seal(self, enc: KeyEncryption) -> str:
        raw = json.dumps(asdict(self), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(enc.encrypt(_SEAL_ID, raw)).decode().rstrip("=")

    @classmethod
    def open(cls, enc: KeyEncryption, sealed: str) -> SignInRequest | None:
        try:
            blob = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
            data: dict[str, Any] = json.loads(enc.decrypt(_SEAL_ID, blob))
            return cls(**data)
        except (binascii.Error, ValueError, TypeError, InvalidTag):
            return None


def _redirect(uri: str, params: dict[str, str | None]) -> RedirectResponse:
    """``uri`` with ``params`` added to its query (RFC 6749 §3.1.2: keep its own query)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    target = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return RedirectResponse(
        target,
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _error_redirect(
    uri: str, error: str, description: str, state: str | None, issuer: str
) -> RedirectResponse:
    params = {"error": error, "error_description": description, "state": state, "iss": issuer}
    return _redirect(uri, params)


def _query(request: Request) -> tuple[dict[str, str], set[str]]:
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for key, value in request.query_params.multi_items():
        if key in values:
            repeated.add(key)
        values[key] = value
    return values, repeated


def _utf8_len(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _binding(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "surrogatepass")).hexdigest()


# A page for browsers, not an API operation: left out of the OpenAPI document.
@router.get(PATH, response_class=HTMLResponse, include_in_schema=False)
async def authorize(request: Request, state: State) -> Response:
    settings = state.settings
    params, repeated = _query(request)
    client_id = params.get("client_id", "")
    if "client_id" in repeated or client_id not in CLIENT_NAMES:
        return error_page("Unknown client: this application is not registered here.")
    redirect_uri = params.get("redirect_uri", "")
    if "redirect_uri" in repeated or redirect_uri not in settings.console_redirects:
        return error_page("The redirect URI is not registered for this application.")
    given_state = params.get("state")
    if given_state is not None and _utf8_len(given_state) > MAX_STATE_BYTES:
        given_state = None  # not echoed back: refused below
        repeated.add("state")

    def refuse(error: str, description: str) -> RedirectResponse:
        return _error_redirect(redirect_uri, error, description, given_state, settings.issuer)

    if repeated:
        names = ", ".join(sorted(repeated))
        return refuse("invalid_request", f"parameter(s) repeated or too long: {names}")
    response_type = params.get("response_type", "")
    if not response_type:
        return refuse("invalid_request", "missing parameter: response_type")
    if response_type != "code":
        return refuse("unsupported_response_type", "only response_type=code is supported")
    challenge = params.get("code_challenge", "")
    method = params.get("code_challenge_method", "")
    if not challenge:
        return refuse("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
    if method != "S256":
        return refuse("invalid_request", "transform algorithm not supported: use S256")
    if not codes.S256_CHALLENGE.fullmatch(challenge):
        return refuse("invalid_request", "code_challenge must be 43 base64url characters")
    scope = params.get("scope") or None
    if scope is not None:
        unknown = sorted(set(scope.split()) - set(ALL_SCOPES))
        if _utf8_len(scope) > MAX_SCOPE_BYTES or unknown:
            named = " ".join(unknown[:5])[:200]
            return refuse("invalid_scope", f"unknown scope: {named}")
    cookie = request.cookies.get(COOKIE, "")
    fresh = not _COOKIE_VALUE.fullmatch(cookie)
    if fresh:
        cookie = secrets.token_urlsafe(32)
    sealed = SignInRequest(
        client_id,
        redirect_uri,
        challenge,
        given_state,
        scope,
        _binding(cookie),
        time.time() + settings.login_form_ttl,
    ).seal(request.app.state.key_encryption)
    page = sign_in_page(
        sealed=sealed,
        client_name=CLIENT_NAMES[client_id],
        redirect_origin=origin_of(redirect_uri) or "",
    )
    if fresh:
        page.set_cookie(
            COOKIE,
            cookie,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return page


async def _form(request: Request) -> dict[str, str] | None:
    if (
        not request.headers.get("content-type", "")
        .lower()
        .startswith("application/x-www-form-urlencoded")
    ):
        return None
    form = await request.form()
    out: dict[str, str] = {}
    for key in form:
        values = form.getlist(key)
        if len(values) != 1 or not isinstance(values[0], str):
            return None
        out[key] = values[0]
    return out


_STALE = "This sign-in page has expired or was not opened here. Start the sign-in again."


@router.post(PATH, response_class=HTMLResponse, include_in_schema=False)
async def sign_in(request: Request, session: DbSession, state: State) -> Response:
    settings = state.settings
    form = await _form(request)
    if form is None:
        return error_page("The sign-in form was not sent as a form.")
    sealed = form.get("request", "")
    pending = SignInRequest.open(request.app.state.key_encryption, sealed) if sealed else None
    cookie = request.cookies.get(COOKIE, "")
    if (
        pending is None
        or pending.expires < time.time()
        or not hmac.compare_digest(_binding(cookie), pending.binding)
        or pending.redirect_uri not in settings.console_redirects
    ):
        return error_page(_STALE)
    username, password = form.get("username", ""), form.get("password", "")

    def again(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
        return sign_in_page(
            sealed=sealed,
            client_name=CLIENT_NAMES.get(pending.client_id, pending.client_id),
            redirect_origin=origin_of(pending.redirect_uri) or "",
            username=username if len(username) <= 64 and username.isprintable() else "",
            message=message,
            status=status,
            headers=headers,
        )

    if not username or not password:
        return again("Enter your username and password.", 400)
    address = client_address(request)
    assert state.throttle is not None
    try:
        await bounds.refuse_username(session, username, address)
        user = await users.login(session, state.throttle, username, password, address)
    except RateLimited as exc:
        return again(
            f"Too many sign-in attempts: try again in {exc.retry_after} seconds.",
            429,
            exc.headers,
        )
    except OAuthError:
        return again(REFUSED[0].upper() + REFUSED[1:] + ".", 400)
    granted = scopes_for(user.roles)
    if pending.scope is not None:
        granted &= frozenset(pending.scope.split())
    if not granted:
        return _error_redirect(
            pending.redirect_uri,
            "access_denied",
            "this user holds none of the requested scopes",
            pending.state,
            settings.issuer,
        )
    code = await codes.issue(
        session,
        settings.authorization_code_ttl,
        user,
        granted,
        pending.client_id,
        pending.redirect_uri,
        pending.code_challenge,
    )
    # RFC 9207: the issuer in the response, so a client can tell its servers apart.
    return _redirect(
        pending.redirect_uri, {"code": code, "state": pending.state, "iss": settings.issuer}
    )
