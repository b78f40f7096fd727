"""Admin module settings (``AM_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from artstore.common.settings import ServiceSettings


class AMSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="AM_", env_file=".env", extra="ignore", populate_by_name=True
    )

    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(8000, description="Port to listen on")
    data_dir: Path = Field(
        Path(""),
        description="Local state (the generated key-encryption key); default `.artstore/admin`",
    )
    key_encryption_key: str = Field(
        "",
        description="Secret that encrypts the signing keys at rest (any string; hashed to a "
        "256-bit AES-GCM key)",
    )
    key_encryption_key_file: Path = Field(
        Path(""),
        description="File holding that secret (a mounted secret); used when "
        "`AM_KEY_ENCRYPTION_KEY` is empty. Neither set: generated under `AM_DATA_DIR`",
    )
    access_token_ttl: int = Field(900, description="Access token lifetime, seconds")
    refresh_token_ttl: int = Field(
        30 * 86400, description="Refresh token lifetime, seconds (each use rotates it)"
    )
    login_max_failures: int = Field(5, description="Failed logins in a row that lock a user", ge=1)
    login_lockout_seconds: int = Field(900, description="How long a locked user stays locked")
    sa_secret_ttl_days: int = Field(90, description="Service-account secret lifetime, days")
    se_poll_interval: float = Field(
        10.0, description="Seconds between polls of every storage element", gt=0
    )
    se_timeout: float = Field(
        3.0, description="Timeout of one call to a storage element, seconds", gt=0
    )
    bootstrap_admin_username: str = Field("admin", description="Admin user created at first start")
    bootstrap_admin_password: str = Field(
        "",
        description="Its password; empty = generated and logged once (then change it)",
    )
    bootstrap_service_accounts: str = Field(
        "ingester,query,storage-element",
        description="Service accounts created at first start (comma-separated; "
        "secrets logged once and written to `AM_DATA_DIR/bootstrap-credentials.json`)",
    )
    cors_origins: str = Field(
        "*",
        description="Origins allowed to call the admin from a browser (Swagger UI of the "
        "other services); comma-separated, empty = none",
    )

    @model_validator(mode="after")
    def _defaults(self) -> AMSettings:
        if self.data_dir == Path(""):
            self.data_dir = Path(".artstore") / "admin"
        return self

    @property
    def token_url(self) -> str:
        return f"{self.admin_url.rstrip('/')}/api/v1/auth/token"
