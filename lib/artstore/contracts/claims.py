"""The claims of an access token: what the admin signs (``to_claims``) and what every
service reads back (``from_claims``), written once.

``from_claims`` reads who the token speaks for; whether the token holds at all (``iss``,
``aud``, the times) is the verifier's check (artstore.common.auth), done before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# Every claim an access token may carry (the admin's discovery document lists them).
CLAIM_NAMES: Final = (
    "iss", "aud", "sub", "iat", "nbf", "exp", "jti", "scope", "kind", "name", "roles", "act"
)  # fmt: skip


class ClaimsError(ValueError):
    """The claims name no subject, or a malformed one."""


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    kind: str  # "user" or "service_account"
    name: str  # display name
    scope: str  # space-separated scopes, as signed
    # A user's roles; None for a service account (no ``roles`` claim).
    roles: tuple[str, ...] | None = None
    # RFC 8693 ``act``: the service acting for ``sub`` (a token exchanged for one SE).
    act: str | None = None
    iss: str = ""
    aud: str = ""
    # To the millisecond: a per-subject revocation ends the tokens issued before it.
    iat: float | None = None
    nbf: int | None = None
    exp: int | None = None
    jti: str = ""

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def to_claims(self) -> dict[str, Any]:
        """The JWT payload (registered claims left out when unset)."""
        claims: dict[str, Any] = {}
        for name in ("iss", "aud"):
            if getattr(self, name):
                claims[name] = getattr(self, name)
        claims["sub"] = self.sub
        for name in ("iat", "nbf", "exp"):
            if getattr(self, name) is not None:
                claims[name] = getattr(self, name)
        if self.jti:
            claims["jti"] = self.jti
        claims.update(scope=self.scope, kind=self.kind, name=self.name)
        if self.roles is not None:
            claims["roles"] = list(self.roles)
        if self.act is not None:
            claims["act"] = {"sub": self.act}
        return claims

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> TokenClaims:
        """Who a (verified) payload speaks for. A claim of the wrong type reads as absent,
        except ``sub`` (required) and ``act`` (a malformed actor is refused)."""
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise ClaimsError("token has no subject")
        scope = claims.get("scope", "")
        roles = claims.get("roles")
        nbf, exp = _number(claims.get("nbf")), _number(claims.get("exp"))
        return cls(
            sub=sub,
            kind=str(claims.get("kind", "user")),
            name=str(claims.get("name", sub)),
            scope=scope if isinstance(scope, str) else "",
            roles=tuple(str(r) for r in roles) if isinstance(roles, list) else None,
            act=_actor(claims.get("act")),
            iss=_str(claims.get("iss")),
            aud=_str(claims.get("aud")),
            iat=_number(claims.get("iat")),
            nbf=int(nbf) if nbf is not None else None,
            exp=int(exp) if exp is not None else None,
            jti=_str(claims.get("jti")),
        )


def _actor(act: object) -> str | None:
    if act is None:
        return None
    sub = act.get("sub") if isinstance(act, dict) else None
    if not isinstance(sub, str) or not sub:
        raise ClaimsError("invalid token: malformed act claim")
    return sub


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
