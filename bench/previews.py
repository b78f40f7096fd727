"""Preview rendering speed (issue 16): previews per second per worker process for
4000x3000 JPEG photos and for PDFs (docs/previews.md).

Each row renders ``--files`` generated originals one after another through
``artstore.worker.previews.render.render`` -- the same limited child process per file
the job worker uses, so the figure includes the process start, the decode, EXIF
orientation, both sizes and the WebP (or JPEG) encode -- and prints files/s and
previews/s (files x sizes). Downloading the original and uploading the previews to the
SEs are not included: they are bounded by the network, not by the worker's CPU.

    .venv/bin/python bench/previews.py [--files 20] [--sizes 256,1024] [--format webp]
        [--concurrency 1,2]

The originals are noise (JPEG quality 90, about 6 MB: harder to decode than a photo)
and A4 PDF pages made by Pillow from a 2480x3508 scan-like image (300 dpi).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from artstore.worker.previews.render import RenderRequest, render  # noqa: E402
from artstore.worker.previews.settings import PreviewSettings  # noqa: E402


def photo(seed: int) -> bytes:
    """A 4000x3000 JPEG that compresses like a photo (noise over a gradient)."""
    noise = Image.effect_noise((4000, 3000), 40 + seed % 7)
    grad = Image.linear_gradient("L").resize((4000, 3000))
    im = Image.merge("RGB", (noise, grad, Image.blend(noise, grad, 0.5)))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def pdf(seed: int) -> bytes:
    """A one-page A4 PDF holding a 300 dpi scan-like image."""
    page = Image.effect_noise((2480, 3508), 20 + seed % 5).convert("RGB")
    buf = io.BytesIO()
    page.save(buf, "PDF", resolution=300.0)
    return buf.getvalue()


async def row(
    label: str, originals: list[bytes], req: RenderRequest, seconds: float, concurrency: int = 1
) -> str:
    """``concurrency`` renders at once (``WK_PREVIEW_CONCURRENCY``): a child process each."""
    slots = asyncio.Semaphore(concurrency)

    async def one(data: bytes) -> None:
        async with slots:
            out = await render(data, req, seconds=seconds)
        assert sorted(out) == sorted(req.sizes)

    start = time.perf_counter()
    await asyncio.gather(*(one(data) for data in originals))
    took = time.perf_counter() - start
    n = len(originals)
    mean = sum(map(len, originals)) / n / 1e6
    return (
        f"| {label} | {concurrency} | {mean:.1f} MB | {n} | {took:.1f} s | {n / took:.2f} | "
        f"{n * len(req.sizes) / took:.2f} |"
    )


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--sizes", default="256,1024")
    p.add_argument("--format", choices=("webp", "jpeg"), default="webp")
    p.add_argument(
        "--concurrency",
        default="1",
        help="Renders at once, comma-separated for several rows (WK_PREVIEW_CONCURRENCY)",
    )
    args = p.parse_args()
    s = PreviewSettings(preview_sizes=args.sizes, preview_format=args.format)
    req = s.render_request()
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    print(f"# {os.cpu_count()} CPUs, sizes {args.sizes}, {args.format}, one worker process")
    print("| originals | concurrency | mean size | files | time | files/s | previews/s |")
    print("|---|---|---|---|---|---|---|")
    photos = [photo(i) for i in range(min(args.files, 4))]
    photos = [photos[i % len(photos)] for i in range(args.files)]
    for c in levels:
        print(await row("4000x3000 JPEG", photos, req, s.preview_timeout_seconds, c), flush=True)
    pdfs = [pdf(i) for i in range(min(args.files, 4))]
    pdfs = [pdfs[i % len(pdfs)] for i in range(args.files)]
    for c in levels:
        label = "A4 PDF, 300 dpi scan"
        print(await row(label, pdfs, req, s.preview_timeout_seconds, c), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
