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


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"preview sizes must be integers: {text!r}") from None
    if not sizes or any(not PREVIEW_SIZE_MIN <= s <= PREVIEW_SIZE_MAX for s in sizes):
        raise ValueError(f"preview sizes must be {PREVIEW_SIZE_MIN}..{PREVIEW_SIZE_MAX}: {text!r}")
    return tuple(sizes)
