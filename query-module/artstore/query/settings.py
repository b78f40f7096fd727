"""Query module settings (``QM_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from artstore.common.limits import max_body_bytes_field
from artstore.common.settings import ServiceSettings

MAX_REDIS_TTL = 60.0  # architecture §8
MAX_LOCAL_TTL = 5.0  # architecture §8: without Redis a stale entry lives at most this long
PREVIEW_SIZE_MIN, PREVIEW_SIZE_MAX = 16, 4096  # as the worker's WK_PREVIEW_SIZES


def parse_preview_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"preview sizes must be integers: {text!r}") from None
    if not sizes or any(not PREVIEW_SIZE_MIN <= s <= PREVIEW_SIZE_MAX for s in sizes):
        raise ValueError(f"preview sizes must be {PREVIEW_SIZE_MIN}..{PREVIEW_SIZE_MAX}: {text!r}")
    return tuple(sizes)


class QMSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="QM_", env_file=".env", extra="ignore", populate_by_name=True
    )

    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(8030, description="Port to listen on")
    max_body_bytes: int = max_body_bytes_field()
    public_url: str = Field(
        "",
        description="Base of the signed-link URLs handed out; default `http://<host>:<port>`",
    )
    data_dir: Path = Field(
        Path(""), description="Local state (the generated link secret); default `.artstore/query`"
    )
    link_secret: str = Field(
        "",
        description="HMAC key of signed links (at least 32 characters, not a placeholder); "
        "empty = generated once into "
        "`QM_DATA_DIR/link-secret` (0600). Set it when several query instances run",
    )
    client_id: str = Field(
        "", description="The query module's service account (reads the SE registry, serves links)"
    )
    client_secret: str = Field("", description="Its secret")
    credentials_file: Path = Field(
        Path(""),
        description="Used when `QM_CLIENT_ID` is empty: the admin's "
        "`bootstrap-credentials.json`, whose `query` entry is taken",
    )
    registry_poll_interval: float = Field(
        10.0, description="Seconds between reads of the admin's SE registry", gt=0
    )
    se_timeout: float = Field(
        30.0, description="Read timeout of one call to a storage element, seconds", gt=0
    )
    se_connect_timeout: float = Field(
        2.0, description="Connect timeout to a storage element (then the next copy)", gt=0
    )
    cache_ttl: float = Field(
        30.0,
        description="Metadata cache lifetime, seconds; capped at 60 with Redis and 5 without; "
        "0 = no cache",
        ge=0,
    )
    search_count_limit: int = Field(
        1000,
        description="A search counts matches exactly up to this many; past it `total` is "
        "this figure and `total_relation` is `gte`. 0 = always count exactly",
        ge=0,
    )
    search_rank_window: int = Field(
        1000,
        description="Sorted by relevance, only this many newest matches are ranked (best "
        "first), then older matches follow newest first; exact when fewer match. "
        "0 = rank every match",
        ge=0,
    )
    search_timeout: float = Field(
        10.0, description="Statement timeout of one search query, seconds", gt=0
    )
    pass_download_redirects: bool = Field(
        True,
        description="Pass an SE's 307 to a presigned S3 URL (`SE_S3_PRESIGNED_DOWNLOADS`) on "
        "to the client (downloads and signed links); false = ask the SE to stream and relay "
        "the bytes as for any other SE",
    )

    preview_sizes: str = Field(
        "256,1024",
        description="Preview sizes `GET /api/v1/files/{id}/preview?size=` accepts (longest "
        "side, px, comma-separated); keep it equal to the worker's `WK_PREVIEW_SIZES`",
    )

    @field_validator("preview_sizes")
    @classmethod
    def _preview_sizes(cls, value: str) -> str:
        parse_preview_sizes(value)
        return value

    def preview_size_set(self) -> frozenset[int]:
        return frozenset(parse_preview_sizes(self.preview_sizes))

    @model_validator(mode="after")
    def _defaults(self) -> QMSettings:
        if self.data_dir == Path(""):
            self.data_dir = Path(".artstore") / "query"
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        return self

    @property
    def token_url(self) -> str:
        return f"{self.admin_url.rstrip('/')}/api/v1/auth/token"

    def effective_cache_ttl(self) -> float:
        return min(self.cache_ttl, MAX_REDIS_TTL if self.redis_url else MAX_LOCAL_TTL)
