"""API shapes of the auth domain."""

from __future__ import annotations

from pydantic import BaseModel

from artstore.admin.service_accounts.schemas import ServiceAccount
from artstore.admin.users.schemas import User


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6749 token type
    expires_in: int
    scope: str
    refresh_token: str | None = None
    issued_token_type: str | None = None  # token exchange (RFC 8693)


class Me(BaseModel):
    sub: str
    kind: str
    name: str
    scopes: list[str]
    roles: list[str]
    user: User | None = None
    service_account: ServiceAccount | None = None


class OAuthErrorBody(BaseModel):
    error: str
    error_description: str
