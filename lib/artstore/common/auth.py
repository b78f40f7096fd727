"""JWT verification for every service (architecture §4): RS256 only, JWKS cached, fail closed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import httpx
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.routing import iter_route_contexts
from fastapi.security import HTTPBearer, OAuth2
from jose import jwk, jwt
from jose.exceptions import JOSEError
from starlette.routing import BaseRoute

from artstore.common.errors import Forbidden, Unauthorized
from artstore.common.httpclient import make_async_client
from artstore.common.revocation import RevocationList
from artstore.contracts.claims import ClaimsError, TokenClaims

log = logging.getLogger("artstore.auth")

ALL_SCOPES = (
    "files:read",
    "files:write",
    "files:delete",
    "storage:read",
    "storage:write",
    "admin:read",
    "admin:write",
    "audit:read",
)


@dataclass(frozen=True)
class Principal:
    sub: str
    kind: str
    name: str
    scopes: frozenset[str]
    roles: tuple[str, ...] = ()
    token: str = field(default="", repr=False)
    # RFC 8693 ``act``: the service acting for ``sub`` (a token exchanged at the admin
    # for one SE, architecture §10); None for a token the subject obtained itself.
    act: str | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class KeySource(Protocol):
    """Where a verifier finds the public JWK of a ``kid``.

    Services fetch the issuer's JWKS over HTTP (:class:`JwksCache`); the admin module,
    which is the issuer, reads its own key store instead of calling itself.
    """

    async def get(self, kid: str) -> dict[str, Any]:
        """The JWK for ``kid``; raises Unauthorized when it is unknown or unavailable."""
        ...


class JwksCache:
    """Fetches the issuer's JWKS, keeps it ``ttl`` seconds and refetches on an unknown kid.

    Refetches for unknown kids are spaced by ``min_refetch`` seconds so a stream of
    forged kids cannot turn into a stream of requests to the issuer.
    """

    def __init__(self, url: str, ttl: float = 300.0, min_refetch: float = 5.0) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refetch = min_refetch
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _fetch(self) -> None:
        if self._client is None:
            self._client = make_async_client(timeout=5.0, connect_timeout=2.0)
        resp = await self._client.get(self.url)
        resp.raise_for_status()
        keys = resp.json().get("keys", [])
        self._keys = {k["kid"]: k for k in keys if isinstance(k, dict) and "kid" in k}
        self._fetched_at = time.monotonic()

    def _fresh(self) -> bool:
        return time.monotonic() - self._fetched_at < self.ttl

    async def get(self, kid: str) -> dict[str, Any]:
        """The JWK for ``kid``; raises Unauthorized if it is unknown or the JWKS is unreachable."""
        if self._fresh() and kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            recently = time.monotonic() - self._fetched_at < self.min_refetch
            if not (self._fresh() and (kid in self._keys or recently)):
                try:
                    await self._fetch()
                except (httpx.HTTPError, ValueError) as exc:
                    log.warning("JWKS fetch from %s failed: %s", self.url, exc)
                    # Fail closed: without a fresh JWKS no token is accepted.
                    self._keys = {}
                    self._fetched_at = 0.0
                    raise Unauthorized("token cannot be verified: key set unavailable") from exc
        if kid not in self._keys:
            raise Unauthorized("token signed by an unknown key")
        return self._keys[kid]


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    kid: str
    not_before: float
    expires: float
    issued_at: float | None = None


class TokenVerifier:
    """Checks tokens; a token whose signature was checked once is remembered until it
    expires (RSA verification is most of an authenticated request's cost). A remembered
    token is still refused outside its nbf..exp window and when its key is no longer
    served (``jwks.get`` is asked every time, so a JWKS that cannot be refetched once
    stale still fails closed)."""

    def __init__(
        self,
        jwks: KeySource,
        issuer: str,
        audience: str,
        cache_size: int = 4096,
        own_audience: str | None = None,
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        # An SE also accepts tokens bound to it alone (``aud`` = its storage id); every
        # other service accepts the common audience only (architecture §10).
        self.audiences = frozenset(a for a in (audience, own_audience) if a)
        self.cache_size = cache_size
        self._verified: dict[str, _Verified] = {}
        # Subjects disabled, deleted or demoted since (issue 13); set by the app.
        self.revocations: RevocationList | None = None

    async def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            now = time.time()
            if known.not_before <= now < known.expires:
                await self.jwks.get(known.kid)
                self._not_revoked(known.principal, known.issued_at)
                return known.principal
            del self._verified[token]
        principal, kid, claims = await self._verify_signed(token)
        iat = claims.get("iat")
        issued_at = float(iat) if isinstance(iat, int | float) else None
        self._not_revoked(principal, issued_at)
        if self.cache_size > 0:
            if len(self._verified) >= self.cache_size:
                del self._verified[next(iter(self._verified))]  # the oldest entry
            nbf = claims.get("nbf")
            self._verified[token] = _Verified(
                principal,
                kid,
                float(nbf) if isinstance(nbf, int | float) else 0.0,
                float(claims["exp"]),
                issued_at,
            )
        return principal

    def _not_revoked(self, principal: Principal, issued_at: float | None) -> None:
        # The acting service too: an exchanged token ends with the account that got it.
        revoked = self.revocations
        if revoked is not None and any(
            revoked.refuses(who, issued_at) for who in (principal.sub, principal.act) if who
        ):
            raise Unauthorized("token revoked: the account changed after it was issued")

    async def _verify_signed(self, token: str) -> tuple[Principal, str, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError as exc:
            raise Unauthorized("malformed token") from exc
        if header.get("alg") != "RS256":
            raise Unauthorized("token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token has no key id")
        key_data = await self.jwks.get(kid)
        try:
            key = jwk.construct(key_data, algorithm="RS256")
            # Signature first; python-jose's claim checks are then repeated strictly by
            # _check_claims: it passes a token without ``aud`` and takes ``"exp": "123"``.
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_iss": False, "leeway": 0},
            )
        except JOSEError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        self._check_claims(claims)
        if claims.get("typ") == "refresh" or claims.get("token_use") == "refresh":
            raise Unauthorized("refresh tokens are not access tokens")
        try:
            who = TokenClaims.from_claims(claims)
        except ClaimsError as exc:
            raise Unauthorized(str(exc)) from None
        principal = Principal(
            sub=who.sub,
            kind=who.kind,
            name=who.name,
            scopes=who.scopes & frozenset(ALL_SCOPES),  # unknown scopes grant nothing
            roles=who.roles or (),
            token=token,
            act=who.act,
        )
        return principal, kid, claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        """``iss``, ``aud`` and ``exp`` present and right; times numbers (issue 13)."""
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if value is None and name != "exp":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise Unauthorized(f"invalid token: {name} must be a number")
        now = time.time()
        if claims["exp"] <= now:
            raise Unauthorized("invalid token: expired")
        if claims.get("nbf", 0) > now:
            raise Unauthorized("invalid token: not yet valid")
        if claims.get("iss") != self.issuer:
            raise Unauthorized("invalid token: wrong or missing issuer")
        aud = claims.get("aud")
        # One string only: a list could name the common audience and an SE at once.
        if not isinstance(aud, str) or aud not in self.audiences:
            raise Unauthorized("invalid token: wrong or missing audience")


# Relative here; create_service_app makes it absolute (``{ADMIN_URL}/api/v1/auth/token``)
# in each service's OpenAPI document, so Swagger's Authorize button asks the admin.
TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret

_oauth2 = OAuth2(
    flows=OAuthFlows(
        password=OAuthFlowPassword(tokenUrl=TOKEN_PATH),
        clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_PATH),
    ),
    scheme_name="OAuth2",
    description="Access token from the admin module (sent as `Authorization: Bearer`)",
    auto_error=False,
)
# The same header, documented a second way: Swagger's Authorize then has a field where a
# token obtained elsewhere (the CLI, curl) is pasted. Either scheme is enough.
_pasted = HTTPBearer(
    scheme_name="BearerToken",
    bearerFormat="JWT",
    description="An access token from the admin module, pasted as it is",
    auto_error=False,
)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, else Unauthorized."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """The caller of ``Authorization: Bearer``: one verification whatever the scheme
    (both name the one header). The two schemes are not this function's dependencies:
    FastAPI would solve both on every request, only to read the header twice more
    (issue 19); :func:`document_security` puts them in the OpenAPI document instead."""
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify(bearer_token(request.headers.get("authorization")))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def document_security(routes: Iterable[BaseRoute], schema: dict[str, Any]) -> None:
    """Document both schemes on every operation whose route depends on
    :func:`current_principal`, as FastAPI does for a security dependency: the
    schemes in ``components``, and ``[{"OAuth2": []}, {"BearerToken": []}]`` (either
    one is enough) as the operation's ``security``."""
    schemes = {
        scheme.scheme_name: jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
        for scheme in (_oauth2, _pasted)
    }
    requirement: list[dict[str, list[str]]] = [{name: []} for name in schemes]
    paths = schema.get("paths", {})
    found = False
    # Route contexts: FastAPI's view of each route as included (prefix, dependencies
    # of the routers it was included with), which its own OpenAPI generator walks.
    for route in iter_route_contexts(list(routes)):
        dependant = getattr(route, "dependant", None)
        if dependant is None or not _needs_principal(dependant):
            continue
        for method in getattr(route, "methods", None) or ():
            op = paths.get(getattr(route, "path_format", ""), {}).get(method.lower())
            if op is not None:
                op["security"] = list(requirement)
                found = True
    if found:
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(schemes)


def _needs_principal(dependant: Dependant) -> bool:
    return dependant.call is current_principal or any(
        _needs_principal(d) for d in dependant.dependencies
    )


class RequireScope:
    """Dependency: the caller must hold at least one of ``scopes``."""

    def __init__(self, *scopes: str) -> None:
        self.scopes = scopes

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        if not any(principal.has(s) for s in self.scopes):
            raise Forbidden("missing scope", details={"required_any_of": list(self.scopes)})
        return principal
