"""Settings shared by every service.

Shared names carry no prefix (architecture §3); each service subclasses
:class:`ServiceSettings` with its own ``env_prefix`` (``SE_``, ``AM_``, ``IG_``, ``QM_``).
A ``validation_alias`` wins over the prefix, which is how the shared names stay bare.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that were ever written in this repository as stand-ins (compose, manifests,
# docs): anyone can read them, so a service configured with one has no secret at all.
KNOWN_PLACEHOLDERS = frozenset(
    {
        "artstore",
        "artstore-dev",
        "artstore-dev-secret",
        "change-me",
        "change-me-admin-password",
        "change-me-key-encryption-key",
        "change-me-link-secret",
        "change-me-link-signing-secret",
        "change-me-long-random-secret",
        "dev-admin-password",
        "dev-only-key-encryption-key",
        "dev-only-link-secret",
        "secret",
        "password",
    }
)
# Words no real secret contains (lower case): "CHANGE-ME-...", "<placeholder>".
_PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "placeholder", "replace-me")
MIN_KEY_LENGTH = 32  # machine keys (KEK, link secret): what `secrets.token_urlsafe(24)` gives
MIN_PASSWORD_LENGTH = 16  # a configured bootstrap admin password


class WeakSecret(SystemExit):
    """A service refuses to start: the message names the setting, never its value."""


def secret_problem(value: str, min_length: int) -> str | None:
    """Why ``value`` is no secret (a known placeholder, too short), or None."""
    lowered = value.strip().lower()
    if lowered in KNOWN_PLACEHOLDERS or any(w in lowered for w in _PLACEHOLDER_WORDS):
        return "is a published placeholder"
    if len(value) < min_length:
        return f"is shorter than {min_length} characters"
    return None


def refuse_weak_secrets(settings: ServiceSettings, secrets: Mapping[str, tuple[str, int]]) -> None:
    """Raise :class:`WeakSecret` for the first of ``{setting name: (value, minimum
    length)}`` that is set and weak, unless ``ARTSTORE_DEV_MODE`` is on. An empty value
    is not checked: the service generates a strong one itself."""
    if settings.dev_mode:
        return
    for name, (value, min_length) in secrets.items():
        problem = secret_problem(value, min_length) if value else None
        if problem is not None:
            raise WeakSecret(
                f"refusing to start: {name} {problem}. Set a random value "
                f"(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), "
                "leave it empty to have one generated, or set ARTSTORE_DEV_MODE=1 on a "
                "throwaway development system"
            )


class ServiceSettings(BaseSettings):
    """Base of every service's settings: the shared, unprefixed names of architecture §3."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        "",
        validation_alias="DATABASE_URL",
        description="PostgreSQL URL (postgresql+asyncpg://...); empty = no catalog",
    )
    redis_url: str = Field("", validation_alias="REDIS_URL", description="Redis URL; empty = none")
    admin_url: str = Field(
        "http://127.0.0.1:8000", validation_alias="ADMIN_URL", description="Admin module base URL"
    )
    jwks_url: str = Field(
        "http://127.0.0.1:8000/.well-known/jwks.json",
        validation_alias="JWKS_URL",
        description="Where the token issuer's public keys are fetched",
    )
    jwt_issuer: str = Field(
        "",
        validation_alias="JWT_ISSUER",
        description="Expected `iss`: the admin's public URL (its `AM_PUBLIC_URL`); "
        "empty = `ADMIN_URL`",
    )
    jwt_audience: str = Field(
        "artstore", validation_alias="JWT_AUDIENCE", description="Expected `aud`"
    )
    jwks_cache_seconds: int = Field(
        300,
        validation_alias="JWKS_CACHE_SECONDS",
        description="How long a fetched JWKS is used before it is fetched again",
    )
    revocations_url: str = Field(
        "",
        validation_alias="REVOCATIONS_URL",
        description="Where the issuer's per-subject revocations are polled; empty = "
        "`/api/v1/auth/revocations` at the origin of `JWKS_URL`",
    )
    revocation_poll_seconds: float = Field(
        10.0,
        validation_alias="REVOCATION_POLL_SECONDS",
        description="Seconds between polls of those revocations (Redis pushes them at once "
        "when `REDIS_URL` is set)",
        gt=0,
    )
    browser_origins: str = Field(
        "",
        validation_alias="CORS_ORIGINS",
        description="Browser origins the ingester and query module answer (CORS: the "
        "console, Swagger UI); comma-separated; empty = the origins of `JWT_ISSUER` and "
        "`ADMIN_URL` (the console) and of the services of `artstore up`. The admin has "
        "its own, `AM_CORS_ORIGINS`",
    )
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL", description="Log level")
    log_format: Literal["json", "console"] = Field(
        "json", validation_alias="LOG_FORMAT", description="Log line format: json or console"
    )
    dev_mode: bool = Field(
        False,
        validation_alias="ARTSTORE_DEV_MODE",
        description="Development only: accept placeholder or short secrets (`artstore up` "
        "and the tests set it); off, a service refuses to start with one",
    )

    @model_validator(mode="after")
    def _derived_issuer(self) -> Self:
        # The admin issues tokens under its public URL, which is ADMIN_URL unless it says
        # otherwise (architecture §4): a service told nothing expects that.
        if not self.jwt_issuer:
            self.jwt_issuer = self.admin_url.rstrip("/")
            self.model_fields_set.discard("jwt_issuer")  # derived, not given
        return self
