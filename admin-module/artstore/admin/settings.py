"""Admin module settings (``AM_*``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from artstore.admin.console.settings import ConsoleSettings
from artstore.common.cors import LOCAL_SERVICE_ORIGINS
from artstore.common.limits import max_body_bytes_field
from artstore.common.settings import MIN_KEY_LENGTH, MIN_PASSWORD_LENGTH, ServiceSettings


def check_issuer_url(url: str) -> str:
    """An issuer identifier (RFC 8414 §2): an http(s) URL with a host and neither query
    nor fragment; kept without its trailing slash, as tokens and metadata carry it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"the issuer (AM_PUBLIC_URL) must be an http(s) URL with a host, not {url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"the issuer (AM_PUBLIC_URL) must have no query or fragment: {url!r}")
    return url.strip().rstrip("/")


# The browser origins of the system's own services as `artstore up` (and the compose
# file) run them: their Swagger UI gets its token from the admin. Deployments with other
# addresses set AM_CORS_ORIGINS to theirs. (Shared with the ingester and query: cors.py.)
DEFAULT_CORS_ORIGINS = ",".join(LOCAL_SERVICE_ORIGINS)

CONSOLE_CALLBACK = "/console/callback"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def console_redirect_uris(public_url: str, configured: str) -> tuple[str, ...]:
    """The console's registered redirect URIs: ``configured`` (comma-separated), else
    ``<public URL>/console/callback`` and, when that URL is a loopback one, the same with
    each other loopback name (a browser opened at localhost or 127.0.0.1 alike)."""
    given = tuple(u.strip() for u in configured.split(",") if u.strip())
    for uri in given:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
            raise ValueError(
                f"AM_CONSOLE_REDIRECT_URIS: {uri!r} is not an http(s) URL without a fragment"
            )
    if given:
        return given
    parts = urlsplit(public_url)
    base = public_url.rstrip("/") + CONSOLE_CALLBACK
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return (base,)
    port = f":{parts.port}" if parts.port else ""
    path = parts.path.rstrip("/") + CONSOLE_CALLBACK
    others = (f"{parts.scheme}://{name}{port}{path}" for name in _LOOPBACK_NAMES)
    return (base, *(uri for uri in others if uri != base))


class AMSettings(ServiceSettings, ConsoleSettings):
    model_config = SettingsConfigDict(
        env_prefix="AM_", env_file=".env", extra="ignore", populate_by_name=True
    )

    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(8000, description="Port to listen on")
    max_body_bytes: int = max_body_bytes_field()
    data_dir: Path = Field(
        Path(""),
        description="Local state (the generated key-encryption key); default `.artstore/admin`",
    )
    key_encryption_key: str = Field(
        "",
        description="Secret that encrypts the signing keys at rest (at least 32 characters, "
        "not a placeholder; hashed to a 256-bit AES-GCM key)",
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
    login_max_failures: int = Field(
        5,
        description="Failed sign-ins in a row from one client address that lock that "
        "(username, address) pair",
        ge=1,
    )
    login_lockout_seconds: int = Field(
        900, description="How long a locked (username, client address) pair stays locked", ge=1
    )
    login_address_burst: int = Field(
        30, description="Failed sign-ins one client address may make at once (token bucket)", ge=1
    )
    login_address_per_minute: float = Field(
        30.0, description="Failed sign-ins per minute one client address gets back", gt=0
    )
    login_username_burst: int = Field(
        20, description="Failed sign-ins for one username, from any address, at once", ge=1
    )
    login_username_per_minute: float = Field(
        10.0, description="Failed sign-ins per minute one username gets back", gt=0
    )
    password_hash_threads: int = Field(
        0,
        description="Threads that check passwords (and, separately, client secrets); "
        "0 = the CPUs less one for passwords, the CPUs for client secrets",
        ge=0,
    )
    password_hash_queue: int = Field(
        16,
        description="Checks that may wait for those threads; beyond that 429 at once",
        ge=0,
    )
    sa_secret_ttl_days: int = Field(90, description="Service-account secret lifetime, days")
    se_poll_interval: float = Field(
        10.0, description="Seconds between polls of every storage element", gt=0
    )
    se_timeout: float = Field(
        3.0, description="Timeout of one call to a storage element, seconds", gt=0
    )
    se_url_allow: str = Field(
        "",
        description="Where storage elements may be registered: comma-separated hosts and "
        "CIDRs (a host name must match, or resolve only into the CIDRs); empty = anywhere",
    )
    bootstrap_admin_username: str = Field("admin", description="Admin user created at first start")
    bootstrap_admin_password: str = Field(
        "",
        description="Its password (at least 16 characters); empty = generated into "
        "`AM_BOOTSTRAP_CREDENTIALS_FILE` (never logged; then change it)",
    )
    bootstrap_service_accounts: str = Field(
        "ingester,query,storage-element,worker",
        description="Service accounts created at first start (comma-separated; their "
        "secrets are written to `AM_BOOTSTRAP_CREDENTIALS_FILE`, never logged)",
    )
    bootstrap_credentials_file: Path = Field(
        Path(""),
        description="Where first-start secrets go (mode 0600, merged); default "
        "`AM_DATA_DIR/bootstrap-credentials.json`",
    )
    cors_origins: str = Field(
        DEFAULT_CORS_ORIGINS,
        description="Origins allowed to call the admin from a browser (the Swagger UI of "
        "the other services); comma-separated, empty = none. Default: the services of "
        "`artstore up` on 127.0.0.1 and localhost",
    )
    public_url: str = Field(
        "",
        description="The admin's URL as its clients reach it (behind a proxy: the proxy's "
        "https URL): the token issuer (`iss`, the metadata's `issuer`) and the base of the "
        "endpoints its OAuth metadata names; empty = `JWT_ISSUER` if set, else `ADMIN_URL`. "
        "The other services' `JWT_ISSUER` must equal it",
    )
    console_redirect_uris: str = Field(
        "",
        description="Redirect URIs registered for the console's sign-in (OAuth client "
        "`console`, authorization code + PKCE); comma-separated, exact match; empty = "
        "`<AM_PUBLIC_URL>/console/callback` (and its other loopback names when that URL "
        "is a loopback one)",
    )
    authorization_code_ttl: int = Field(
        60, description="Lifetime of an authorization code, seconds", ge=1, le=60
    )
    login_form_ttl: int = Field(
        900,
        description="How long the admin's sign-in page may stay open before it is sent, seconds",
        ge=30,
        le=86400,
    )
    audit_checkpoint_interval: float = Field(
        60.0,
        description="Seconds between signed checkpoints of the audit chain's head "
        "(written when the head moved)",
        gt=0,
    )

    @model_validator(mode="after")
    def _defaults(self) -> AMSettings:
        if self.data_dir == Path(""):
            self.data_dir = Path(".artstore") / "admin"
        if self.bootstrap_credentials_file == Path(""):
            self.bootstrap_credentials_file = self.data_dir / "bootstrap-credentials.json"
        # JWT_ISSUER says what the other services expect: given to the admin too (one
        # shared setting), it is the public URL; told both, they must agree, or every
        # token would be refused everywhere.
        given = self.jwt_issuer if "jwt_issuer" in self.model_fields_set else ""
        self.public_url = check_issuer_url(self.public_url or given or self.admin_url)
        if given and given.rstrip("/") != self.public_url:
            raise ValueError(
                f"JWT_ISSUER ({self.jwt_issuer}) differs from the admin's issuer, "
                f"AM_PUBLIC_URL ({self.public_url}): set one, or both alike"
            )
        self.jwt_issuer = self.public_url
        self.model_fields_set.discard("jwt_issuer")
        console_redirect_uris(self.public_url, self.console_redirect_uris)  # refuse bad ones
        return self

    @property
    def console_redirects(self) -> tuple[str, ...]:
        return console_redirect_uris(self.public_url, self.console_redirect_uris)

    @property
    def issuer(self) -> str:
        """``iss`` of every token the admin signs (RFC 8414 issuer identifier)."""
        return self.public_url

    def secrets_to_check(self) -> dict[str, tuple[str, int]]:
        """The configured secrets a placeholder or short value must not fill."""
        kek = self.key_encryption_key
        name = "AM_KEY_ENCRYPTION_KEY"
        if not kek and self.key_encryption_key_file != Path(""):
            name = f"the file of AM_KEY_ENCRYPTION_KEY_FILE ({self.key_encryption_key_file})"
            try:
                kek = self.key_encryption_key_file.read_text().strip()
            except OSError:
                kek = ""  # reported when the key is loaded, with the reason
        return {
            name: (kek, MIN_KEY_LENGTH),
            "AM_BOOTSTRAP_ADMIN_PASSWORD": (self.bootstrap_admin_password, MIN_PASSWORD_LENGTH),
        }

    @property
    def token_url(self) -> str:
        return f"{self.admin_url.rstrip('/')}/api/v1/auth/token"
