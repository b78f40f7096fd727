"""Token endpoint (RFC 6749), revocation (RFC 7009), metadata (RFC 8414), me,
change-password."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from artstore.admin.audit.service import Actor
from artstore.admin.auth import bounds, codes, exchange
from artstore.admin.auth.errors import NO_STORE, OAuthError
from artstore.admin.auth.revocations import announce_if
from artstore.admin.auth.schemas import Me, OAuthErrorBody, TokenResponse
from artstore.admin.auth.service import Grants, Issued
from artstore.admin.auth.throttle import client_address
from artstore.admin.roles import ordered
from artstore.admin.service_accounts import service as accounts
from artstore.admin.service_accounts.schemas import ServiceAccount
from artstore.admin.state import DbSession, State
from artstore.admin.users import service as users
from artstore.admin.users.schemas import PasswordChange, User
from artstore.common.auth import ALL_SCOPES, CurrentPrincipal, Principal
from artstore.common.errors import Forbidden, NotFound
from artstore.contracts.claims import CLAIM_NAMES

router = APIRouter(tags=["auth"])

GRANTS = ("authorization_code", "client_credentials", "password", "refresh_token", exchange.GRANT)
_FORM = "application/x-www-form-urlencoded"


def _form_doc(fields: dict[str, str], required: list[str]) -> dict[str, Any]:
    props = {name: {"type": "string", "description": desc} for name, desc in fields.items()}
    schema = {"type": "object", "properties": props, "required": required}
    return {"requestBody": {"required": True, "content": {_FORM: {"schema": schema}}}}


_TOKEN_DOC = _form_doc(
    {
        "grant_type": "authorization_code | client_credentials | password | refresh_token | "
        f"{exchange.GRANT}",
        "code": "authorization_code grant: the code from the redirect",
        "redirect_uri": "authorization_code grant: as in the authorization request",
        "code_verifier": "authorization_code grant: the PKCE verifier (RFC 7636)",
        "username": "password grant",
        "password": "password grant",
        "refresh_token": "refresh_token grant",
        "client_id": "client_credentials (or HTTP Basic); authorization_code: `console`",
        "client_secret": "client_credentials (or HTTP Basic)",
        "scope": "optional: space-separated subset of the granted scopes",
        "subject_token": "token exchange: the caller's access token",
        "subject_token_type": f"token exchange: {exchange.ACCESS_TOKEN}",
        "audience": "token exchange: the storage_id of the SE the token is for",
        "requested_token_type": f"token exchange, optional: {exchange.ACCESS_TOKEN}",
    },
    ["grant_type"],
)


async def _form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").lower().startswith(_FORM):
        raise OAuthError("invalid_request", f"the body must be {_FORM}")
    form = await request.form()
    out: dict[str, str] = {}
    for key in form:
        values = form.getlist(key)
        if len(values) > 1:
            raise OAuthError("invalid_request", f"parameter {key!r} given more than once")
        if isinstance(values[0], str):
            out[key] = values[0]
    return out


def _client(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        if "client_secret" in form:
            raise OAuthError("invalid_request", "use one client authentication method")
        try:
            raw = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic credentials") from None
        client_id, sep, secret = raw.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "malformed Basic credentials")
        return unquote_plus(client_id), unquote_plus(secret)
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or not secret:
        raise OAuthError("invalid_client", "client authentication required")
    return client_id, secret


def _basic(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    """HTTP Basic client credentials if the request carries them."""
    if request.headers.get("authorization", "").partition(" ")[0].lower() != "basic":
        return None
    return _client(request, form)


def _required(form: dict[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not form.get(n)]
    if missing:
        raise OAuthError("invalid_request", f"missing parameter(s): {', '.join(missing)}")
    return [form[n] for n in names]


@router.post(
    "/api/v1/auth/token",
    response_model=TokenResponse,
    responses={400: {"model": OAuthErrorBody}, 401: {"model": OAuthErrorBody}},
    openapi_extra=_TOKEN_DOC,
)
async def token(request: Request, session: DbSession, state: State) -> JSONResponse:
    try:
        issued = await _grant(request, session, state)
    except OAuthError as exc:
        state.metrics.token_errors.labels(exc.error).inc()
        raise
    return JSONResponse(issued.body(), headers=NO_STORE)


async def _grant(request: Request, session: DbSession, state: State) -> Issued:
    form = await _form(request)
    bounds.check_form(form)  # NUL never reaches the database (issue 13)
    grant = form.get("grant_type", "")
    grants = Grants(state.settings, state.keys, state.throttle, client_address(request))
    scope = form.get("scope") or None
    if grant == "password":
        username, password = _required(form, "username", "password")
        await bounds.refuse_username(session, username, client_address(request))
        issued = await grants.password(session, username, password, scope)
    elif grant == "client_credentials":
        client_id, secret = _client(request, form)
        issued = await grants.client_credentials(session, client_id, secret, scope)
    elif grant == codes.GRANT:
        client_id = codes.public_client(form, _basic(request, form))
        issued = await codes.redeem(grants, session, form, client_id)
    elif grant == "refresh_token":
        (refresh,) = _required(form, "refresh_token")
        issued = await grants.refresh(session, refresh, scope)
    elif grant == exchange.GRANT:
        client = _client(request, form)
        verifier = request.app.state.token_verifier
        issued = await exchange.exchange(
            session, state.settings, state.keys, verifier, client, form
        )
        grant = "token_exchange"  # the metric label
    elif not grant:
        raise OAuthError("invalid_request", "missing parameter: grant_type")
    else:
        raise OAuthError("unsupported_grant_type", f"supported: {', '.join(GRANTS)}")
    state.metrics.tokens_issued.labels(grant).inc()
    return issued


@router.post(
    "/api/v1/auth/revoke",
    response_class=Response,  # 200 with no body (RFC 7009)
    responses={400: {"model": OAuthErrorBody}},
    openapi_extra=_form_doc({"token": "the token to revoke", "token_type_hint": "ignored"}, []),
)
async def revoke(request: Request, session: DbSession, state: State) -> Response:
    form = await _form(request)
    (token_value,) = _required(form, "token")
    await Grants(state.settings, state.keys).revoke(session, token_value)
    return Response(status_code=200, headers=NO_STORE)


@router.get("/.well-known/oauth-authorization-server")
async def authorization_server_metadata(state: State) -> JSONResponse:
    """RFC 8414 metadata. No OpenID discovery document: no ID tokens are issued, so
    this server does not claim to be an OpenID provider (``scope=openid`` is refused)."""
    return JSONResponse(metadata(state.settings.issuer), headers={"Cache-Control": "max-age=300"})


def metadata(issuer: str) -> dict[str, Any]:
    """Every URL is under the issuer (``AM_PUBLIC_URL``): where clients reach the admin."""
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/api/v1/auth/token",
        "authorization_endpoint": f"{issuer}/api/v1/auth/authorize",
        # "none": the console, a public client, proves itself with PKCE instead.
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "none",
        ],
        "revocation_endpoint": f"{issuer}/api/v1/auth/revoke",
        # RFC 7009 lets a client revoke its own tokens without authenticating to do so.
        "revocation_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": list(GRANTS),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],  # plain is refused
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
        "scopes_supported": list(ALL_SCOPES),
        "service_documentation": f"{issuer}/docs",
        # Not registered by RFC 8414 but read by clients that discover claims.
        "claims_supported": list(CLAIM_NAMES),
    }  # fmt: skip


@router.get("/api/v1/auth/me", response_model=Me)
async def me(principal: CurrentPrincipal, session: DbSession) -> Me:
    out = Me(
        sub=principal.sub,
        kind=principal.kind,
        name=principal.name,
        scopes=ordered(principal.scopes),
        roles=list(principal.roles),
    )
    if principal.kind == "user":
        row = await users.by_username(session, principal.sub)
        out.user = User.of(row) if row is not None else None
    elif principal.kind == "service_account":
        account = await accounts.by_client_id(session, principal.sub)
        out.service_account = ServiceAccount.of(account) if account is not None else None
    return out


async def _a_user(principal: CurrentPrincipal) -> Principal:
    if principal.kind != "user":
        raise Forbidden("only users have passwords")
    return principal


@router.post("/api/v1/auth/change-password", status_code=204)
async def change_password(
    body: PasswordChange,
    request: Request,
    session: DbSession,
    state: State,
    principal: Annotated[Principal, Depends(_a_user)],
) -> Response:
    assert state.throttle is not None
    try:
        # A wrong current password is a failed sign-in: counted and audited (issue 13).
        revoked = await users.change_password(
            session,
            Actor.of(principal),
            state.settings,
            principal.sub,
            body.current_password,
            body.new_password,
            state.throttle,
            client_address(request),
        )
    except NotFound:
        raise Forbidden("the user of this token no longer exists") from None
    await announce_if(state, revoked)
    return Response(status_code=204)
