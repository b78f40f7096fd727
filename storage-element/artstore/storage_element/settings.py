"""Storage element settings (``SE_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from artstore.common.limits import max_body_bytes_field
from artstore.common.settings import ServiceSettings
from artstore.contracts.se import Mode
from artstore.storage_element.layout import MAX_S3_PREFIX_BYTES

GiB = 1024**3
MiB = 1024**2
MAX_PRESIGNED_TTL = 7 * 86400  # SigV4 presigned URLs cannot live longer


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class SESettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    id: str = Field("se-1", description="Stable storage id (`storage_element_id`)")
    name: str = Field("", description="Display name; defaults to the id")
    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(8010, description="Port to listen on")
    max_body_bytes: int = max_body_bytes_field()
    mode: Mode = Field("rw", description="Mode at first start; mode.json wins afterwards")
    data_dir: Path = Field(
        Path(""), description="Data directory; default `.artstore/storage/<SE_ID>`"
    )
    wal_dir: Path = Field(Path(""), description="Journal directory; default `<SE_DATA_DIR>/wal`")
    max_file_size: int = Field(10 * GiB, description="Largest accepted file, bytes (413 above)")
    max_capacity: int = Field(0, description="Bytes this SE may use; 0 = the filesystem's size")
    reserve_bytes: int = Field(
        1 * GiB, description="Free space always left on the filesystem, bytes"
    )
    catalog_timeout: float = Field(
        2.0, description="Seconds an upload waits for its catalog upsert before answering"
    )
    catalog_retry_interval: float = Field(
        5.0, description="Seconds between replays of owed catalog updates"
    )
    wal_segment_bytes: int = Field(16 * MiB, description="Journal segment size before rolling")
    io_threads: int = Field(
        32, description="Worker threads for blocking file I/O and fsync (they mostly wait)"
    )
    io_chunk_bytes: int = Field(1 * MiB, description="Read/write buffer size for blobs")
    index_cache_mb: int = Field(
        16,
        ge=1,
        description=(
            "SQLite page cache of the file index (`<SE_DATA_DIR>/index.sqlite3`), MiB,"
            " shared by its connections: bounds its memory whatever the number of files"
        ),
    )
    index_list_wait: float = Field(
        5.0,
        ge=0,
        description=(
            "Seconds a list answered from the file index waits for the index to finish"
            " reading attrs after a rebuild (503 after)"
        ),
    )
    preview_max_bytes: int = Field(
        4 * MiB,
        ge=1024,
        le=64 * MiB,
        description="Largest accepted preview image (PUT .../previews/{size}), bytes (413 above)",
    )
    group_commit_max_bytes: int = Field(
        1 * MiB,
        ge=0,
        description=(
            "Uploads up to this size are held in memory and published in groups that share"
            " one filesystem flush (local backend); 0 = every upload fsyncs on its own"
        ),
    )
    group_commit_flush: Literal["auto", "syncfs", "fsync"] = Field(
        "auto",
        description=(
            "How a group's temp files are made durable: `syncfs` (one flush of the"
            " filesystem), `fsync` (each file), `auto` = syncfs unless the data directory"
            " is on FUSE, which never passes syncfs on to its server"
        ),
    )
    backend: Literal["local", "s3"] = Field("local", description="Where blobs live: local or s3")
    s3_endpoint_url: str = Field("", description="S3/MinIO endpoint URL; empty = AWS default")
    s3_bucket: str = Field("artstore", description="S3 bucket")
    s3_prefix: str = Field(
        "",
        description=(
            "Key prefix inside the bucket, ending with `/` (e.g. `se-rw-2/`); empty = the SE"
            " claims the whole bucket"
        ),
    )
    s3_region: str = Field("us-east-1", description="S3 region")
    s3_access_key_id: str = Field("", description="S3 access key; empty = the boto3 chain")
    s3_secret_access_key: str = Field("", description="S3 secret key")
    s3_part_size: int = Field(8 * MiB, description="Multipart upload part size, bytes (>= 5 MiB)")
    s3_presigned_downloads: bool = Field(
        False,
        description=(
            "s3 backend only: answer GET downloads (whole or one Range) with a 307 to a"
            " presigned S3 URL instead of streaming (bytes are then not re-hashed on the way"
            " out); refused at start on the local backend"
        ),
    )
    s3_presigned_ttl: int = Field(
        300,
        ge=1,
        le=MAX_PRESIGNED_TTL,
        description="Seconds a presigned download URL stays valid (1..604800, SigV4's limit)",
    )
    s3_public_endpoint: str = Field(
        "",
        description=(
            "S3 endpoint URL put in presigned download URLs (the address clients reach S3"
            " at); empty = `SE_S3_ENDPOINT_URL`"
        ),
    )
    gc_interval: float = Field(3600, description="Seconds between GC runs; 0 = only on request")
    reclaim_age: float = Field(
        7 * 86400, description="Seconds a tombstone or expired file is kept before GC removes it"
    )
    reconcile_interval: float = Field(
        86400, description="Seconds between reconcile runs; 0 = only on request"
    )
    orphan_grace: float = Field(
        3600, description="A blob without attr younger than this is not reported (in flight)"
    )
    scrub_bytes_per_sec: int = Field(
        10 * MiB, description="Background re-hashing rate, bytes/s; 0 = no scrubbing"
    )
    scrub_pass_interval: float = Field(
        86400, description="Seconds to wait between two full scrub passes"
    )
    maintenance_chunk: int = Field(
        1000,
        ge=1,
        description=(
            "Storage paths GC, reconcile and scrub handle per thread hop and per catalog"
            " query (their memory is bounded by it)"
        ),
    )
    reconcile_issues_shown: int = Field(
        1000, ge=0, description="Issues a reconcile report lists (its summary counts all)"
    )
    allow_clock_override: bool = Field(
        False, description="Tests only: let `POST /maintenance/gc?now=` move GC's clock"
    )
    test_skip_publish_dir_fsync: bool = Field(
        False,
        description=(
            "Tests only, breaks durability: skip the hour folder's fsync after publishing"
            " (the power-loss suite must then fail)"
        ),
    )
    crash_at: str = Field(
        "", description="Fault injection: exit hard at this write step (tests only)"
    )

    @model_validator(mode="after")
    def _defaults(self) -> SESettings:
        if not self.name:
            self.name = self.id
        if self.data_dir == Path(""):
            self.data_dir = Path(".artstore") / "storage" / self.id
        if self.wal_dir == Path(""):
            self.wal_dir = self.data_dir / "wal"
        if self.backend == "s3" and self.max_capacity <= 0:
            raise ValueError("SE_BACKEND=s3 needs SE_MAX_CAPACITY (a bucket has no size)")
        if self.s3_prefix and (not self.s3_prefix.endswith("/") or self.s3_prefix[0] == "/"):
            # "se-1" would also list "se-10/...": a prefix is a folder, never a name start.
            raise ValueError("SE_S3_PREFIX must end with '/' and not start with it (e.g. se-1/)")
        if self.s3_presigned_downloads and self.backend != "s3":
            # Refused rather than ignored: a local disk has no URL a client could be sent to.
            raise ValueError(
                "SE_S3_PRESIGNED_DOWNLOADS=true needs SE_BACKEND=s3 (a local-disk SE has"
                " nothing to presign); unset it or use the s3 backend"
            )
        if self.s3_public_endpoint and not _is_http_url(self.s3_public_endpoint):
            raise ValueError("SE_S3_PUBLIC_ENDPOINT must be an http:// or https:// URL")
        if len(self.s3_prefix.encode()) > MAX_S3_PREFIX_BYTES:
            # Keys are prefix + hour folder + storage name + ".attr.json" <= 1024 bytes.
            raise ValueError(f"SE_S3_PREFIX is longer than {MAX_S3_PREFIX_BYTES} bytes (UTF-8)")
        return self
