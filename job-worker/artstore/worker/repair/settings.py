"""The repair settings (``WK_*``, docs/repair.md); ``WorkerSettings`` inherits them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class RepairSettings(BaseSettings):
    permanent_copies: int = Field(
        2,
        description="Copies a permanent file should have when that many rw SEs are online "
        "(else one per online rw SE); keep it equal to the ingester's `IG_REPLICAS`",
        ge=1,
        le=10,
    )
    offline_grace_seconds: float = Field(
        900.0,
        description="Seconds an SE may be offline (admin registry) before its copies stop "
        "counting and `repair.scan` copies its files elsewhere",
        ge=0,
    )
    repair_bytes_per_second: int = Field(
        0,
        description="Bytes per second all repair copies of one worker may move; 0 = no limit",
        ge=0,
    )
    repair_concurrency: int = Field(
        2, description="Repair copies one worker runs at once", ge=1, le=64
    )
    repair_scan_batch: int = Field(
        1000, description="Files `repair.scan` reads from the catalog per query", ge=10, le=100_000
    )
