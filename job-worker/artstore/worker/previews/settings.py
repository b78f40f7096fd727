"""The preview settings (``WK_PREVIEW_*``, docs/previews.md); ``WorkerSettings`` inherits them."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from artstore.worker.previews.render import RenderRequest

# Bounds of a preview's longest side: below 16 nothing is recognisable, above 4096 a
# "preview" is a copy of the original.
PREVIEW_SIZE_MIN = 16
PREVIEW_SIZE_MAX = 4096


class PreviewSettings(BaseSettings):
    preview_sizes: str = Field(
        "256,1024", description="Longest sides (px) of the previews made, comma-separated"
    )
    preview_format: Literal["webp", "jpeg"] = Field(
        "webp", description="Format of the previews: `webp` or `jpeg`"
    )
    preview_quality: int = Field(80, description="Encoder quality of the previews", ge=1, le=100)
    preview_max_input_bytes: int = Field(
        256 * 1024 * 1024,
        description="Largest original (bytes) a preview is made from; larger files get none",
        ge=1,
    )
    preview_max_pixels: int = Field(
        100_000_000,
        description="Most pixels an image (or a rendered PDF page) may have; more is "
        "refused as a decompression bomb",
        ge=1,
    )
    preview_max_pdf_page_points: float = Field(
        14_400.0,
        description="Longest side (PDF points, 1/72 in) of a PDF page previews are made "
        "of; 14400 is the PDF format's own limit",
        gt=0,
    )
    preview_timeout_seconds: float = Field(
        60.0, description="Seconds one file's rendering process may run before it is killed", gt=0
    )
    preview_memory_bytes: int = Field(
        1024 * 1024 * 1024,
        description="Address-space limit (RLIMIT_AS, bytes) of a rendering process",
        ge=256 * 1024 * 1024,
    )

    preview_concurrency: int = Field(
        1,
        description="Preview jobs this worker runs at once, on their own queue (`previews`), "
        "besides `WK_CONCURRENCY`: rendering is CPU-bound, repair and GC are never starved",
        ge=1,
        le=16,
    )
    preview_scan_seconds: int = Field(
        60,
        description="How often `preview.scan` looks for new files without previews: a "
        "divisor of 60 (seconds) or of 3600 (a whole number of minutes); 0 = never",
        ge=0,
    )
    preview_scan_hours: float = Field(
        24.0,
        description="`preview.scan` looks at files uploaded or finalized this many hours back "
        "(older files: `preview.backfill`)",
        gt=0,
    )
    preview_batch: int = Field(
        500, description="Catalog rows per page of `preview.scan` and `preview.backfill`", ge=1
    )

    @field_validator("preview_scan_seconds")
    @classmethod
    def _scan_seconds(cls, v: int) -> int:
        scan_cron(v)
        return v

    @field_validator("preview_sizes")
    @classmethod
    def _sizes(cls, v: str) -> str:
        parse_sizes(v)
        return v

    def sizes(self) -> tuple[int, ...]:
        return parse_sizes(self.preview_sizes)

    def render_request(self) -> RenderRequest:
        return RenderRequest(
            sizes=self.sizes(),
            format=self.preview_format,
            quality=self.preview_quality,
            max_pixels=self.preview_max_pixels,
            max_pdf_page_points=self.preview_max_pdf_page_points,
            memory_bytes=self.preview_memory_bytes,
            # CPU time backs up the wall-clock limit (a child that ignores SIGKILL cannot)
            cpu_seconds=math.ceil(self.preview_timeout_seconds) + 1,
        )


def scan_cron(seconds: int) -> str:
    """The cron (procrastinate's, seconds as a sixth field) of a scan every ``seconds``;
    "" for 0 (never)."""
    if seconds == 0:
        return ""
    if seconds < 60 and 60 % seconds == 0:
        return f"* * * * * */{seconds}"
    if seconds % 60 == 0 and 60 % (seconds // 60) == 0:
        return f"*/{seconds // 60} * * * *"
    raise ValueError(f"preview scan interval must divide 60 s or 3600 s (whole minutes): {seconds}")


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"preview sizes must be integers: {text!r}") from None
    if not sizes or any(not PREVIEW_SIZE_MIN <= s <= PREVIEW_SIZE_MAX for s in sizes):
        raise ValueError(f"preview sizes must be {PREVIEW_SIZE_MIN}..{PREVIEW_SIZE_MAX}: {text!r}")
    return tuple(sizes)
