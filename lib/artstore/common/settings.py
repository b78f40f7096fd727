"""Settings shared by every service.

Shared names carry no prefix (DESIGN §3); each service subclasses
:class:`ServiceSettings` with its own ``env_prefix`` (``SE_``, ``AM_``, ``IG_``, ``QM_``).
A ``validation_alias`` wins over the prefix, which is how the shared names stay bare.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Base of every service's settings: the shared, unprefixed names of DESIGN §3."""

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
    jwt_issuer: str = Field("artstore", validation_alias="JWT_ISSUER", description="Expected `iss`")
    jwt_audience: str = Field(
        "artstore", validation_alias="JWT_AUDIENCE", description="Expected `aud`"
    )
    jwks_cache_seconds: int = Field(
        300,
        validation_alias="JWKS_CACHE_SECONDS",
        description="How long a fetched JWKS is used before it is fetched again",
    )
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL", description="Log level")
    log_format: Literal["json", "console"] = Field(
        "json", validation_alias="LOG_FORMAT", description="Log line format: json or console"
    )
