"""Ingester settings (``IG_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from artstore.common.limits import max_body_bytes_field
from artstore.common.settings import ServiceSettings

MiB = 1024**2
GiB = 1024**3


class IGSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="IG_", env_file=".env", extra="ignore", populate_by_name=True
    )

    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(8020, description="Port to listen on")
    max_body_bytes: int = max_body_bytes_field()
    client_id: str = Field(
        "", description="Service account of the ingester (reads the SE registry, cleans up)"
    )
    client_secret: str = Field("", description="Its secret")
    credentials_file: Path = Field(
        Path(""),
        description="Used when `IG_CLIENT_ID` is empty: the admin's "
        "`bootstrap-credentials.json`, whose `ingester` entry is taken",
    )
    registry_poll_interval: float = Field(
        10.0, description="Seconds between reads of the admin's SE registry", gt=0
    )
    capacity_refresh_interval: float = Field(
        2.0,
        description="Seconds between reads of each writable SE's `/info` (room, mode) for "
        "placement; also read soon after an SE refuses a file",
        gt=0,
    )
    retry_buffer_bytes: int = Field(
        1 * MiB,
        description="Bytes of an upload kept while it is sent, so that a file an SE refuses "
        "with 507 (or a mode change) can go to the next SE; a body of unknown length (a "
        "multipart part) up to this size is read first and sent with its Content-Length; "
        "0 = neither",
        ge=0,
    )
    placement: Literal["most_free", "fill_first"] = Field(
        "most_free", description="Which SE takes a file: most_free or fill_first"
    )
    replicas: int = Field(
        2,
        description="Copies of each permanent file, on distinct rw SEs, when that many rw "
        "SEs are online (else one per online rw SE: the file is under-replicated until the "
        "job worker adds copies, docs/repair.md); temporary files have one copy",
        ge=1,
        le=10,
    )
    max_file_size: int = Field(10 * GiB, description="Largest accepted file, bytes (413 above)")
    batch_max_files: int = Field(100, description="Most files in one batch request", ge=1)
    batch_max_bytes: int = Field(1 * GiB, description="Largest batch request body, bytes")
    upstream_timeout: float = Field(
        300.0, description="Seconds to wait for a storage element between two bytes", gt=0
    )
    upstream_connect_timeout: float = Field(
        3.0, description="Seconds to connect to a storage element", gt=0
    )
    queue_chunks: int = Field(
        8, description="Chunks buffered per SE while streaming (bounds memory per upload)", ge=1
    )
    public_url: str = Field(
        "", description="Base URL clients reach the ingester at (tus Location); empty = as asked"
    )
    upload_expiry: int = Field(
        86400, description="Seconds an unfinished resumable (tus) upload is kept", gt=0
    )
