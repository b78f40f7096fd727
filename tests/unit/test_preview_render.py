"""Rendering previews in the limited child process (job-worker previews/render.py):
every supported type made by the test, decoded back (size, format, orientation,
colour), and the files that must be refused (bomb, corrupt, unsupported, too slow)."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import replace

import pillow_heif
import pytest
from PIL import Image

from artstore.contracts.files import is_previewable
from artstore.worker.previews.render import (
    PreviewRefused,
    RenderRequest,
    render,
    sniff,
)
from artstore.worker.previews.settings import PreviewSettings, parse_sizes

REQ = RenderRequest(
    sizes=(64, 256),
    format="webp",
    quality=90,
    max_pixels=50_000_000,
    max_pdf_page_points=14_400.0,
    memory_bytes=1 << 30,
    cpu_seconds=60,
)
RED, BLUE = (220, 0, 0), (0, 0, 220)


def _save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _decode(blob: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(blob))
    im.load()
    return im


def _close(pixel: object, colour: tuple[int, int, int], tol: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= tol for a, b in zip(pixel[:3], colour, strict=True))


def _halves(w: int, h: int) -> Image.Image:
    """Left half red, right half blue."""
    im = Image.new("RGB", (w, h), RED)
    im.paste(BLUE, (w // 2, 0, w, h))
    return im


async def _render(data: bytes, req: RenderRequest = REQ) -> dict[int, Image.Image]:
    out = await render(data, req, seconds=60)
    return {size: _decode(blob) for size, blob in out.items()}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "AVIF"])
async def test_each_image_type_gives_every_size_in_webp(fmt: str) -> None:
    out = await _render(_save(_halves(800, 400), fmt))
    assert sorted(out) == [64, 256]
    assert out[256].format == "WEBP" and out[256].size == (256, 128)
    assert out[64].size == (64, 32)
    assert _close(out[256].getpixel((10, 64)), RED)
    assert _close(out[256].getpixel((245, 64)), BLUE)


async def test_heic_is_rendered() -> None:
    pillow_heif.register_heif_opener()  # in this (test) process, to write one
    data = _save(_halves(800, 400), "HEIF")
    assert sniff(data) == "image/heic"
    out = await _render(data)
    assert out[256].format == "WEBP" and out[256].size == (256, 128)
    assert _close(out[256].getpixel((10, 64)), RED)
    assert _close(out[256].getpixel((245, 64)), BLUE)


async def test_exif_orientation_is_applied_and_metadata_stripped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise
    exif[0x010F] = "SecretCamera"
    data = _save(_halves(400, 200), "JPEG", exif=exif.tobytes())
    out = await _render(data)
    im = out[256]
    # stored 400x200 left red / right blue -> shown 200x400, top red / bottom blue
    assert im.size == (128, 256)
    assert _close(im.getpixel((64, 10)), RED)
    assert _close(im.getpixel((64, 245)), BLUE)
    assert not im.getexif() and "exif" not in im.info and "icc_profile" not in im.info
    assert b"SecretCamera" not in (await render(data, REQ, seconds=60))[256]


async def test_16_bit_png_is_scaled_not_clipped() -> None:
    row = [32768] * 50 + [0] * 100 + [65535] * 150
    im = Image.frombytes("I;16", (300, 100), struct.pack("<300H", *row) * 100)
    assert im.getpixel((5, 40)) == 32768
    out = await _render(_save(im, "PNG"))
    got = out[256].convert("L")
    assert got.getpixel((5, 40)) == pytest.approx(128, abs=8)
    assert got.getpixel((100, 40)) == pytest.approx(0, abs=8)
    assert got.getpixel((250, 40)) == pytest.approx(255, abs=8)


async def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (120, 60), RED), Image.new("RGB", (120, 60), BLUE)]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    out = await _render(data)
    # never enlarged: the original is smaller than both sizes
    assert out[256].size == (120, 60)
    assert _close(out[256].getpixel((60, 30)), RED)


async def test_cmyk_jpeg_is_converted() -> None:
    data = _save(Image.new("CMYK", (200, 100), (0, 255, 255, 0)), "JPEG")
    out = await _render(data)
    assert out[256].mode in ("RGB", "RGBA")
    assert _close(out[256].getpixel((100, 50)), (255, 0, 0), tol=60)


async def test_pdf_first_page_is_rendered() -> None:
    pages = [_halves(600, 300), Image.new("RGB", (600, 300), (0, 200, 0))]
    data = _save(pages[0], "PDF", save_all=True, append_images=pages[1:], resolution=72.0)
    assert sniff(data) == "application/pdf"
    out = await _render(data)
    im = out[256]
    assert im.size == (256, 128)
    assert _close(im.getpixel((10, 64)), RED)
    assert _close(im.getpixel((245, 64)), BLUE)


async def test_jpeg_output_flattens_alpha() -> None:
    im = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    out = await _render(_save(im, "PNG"), replace(REQ, format="jpeg"))
    assert out[64].format == "JPEG" and out[64].mode == "RGB"
    assert _close(out[64].getpixel((50, 50)), (255, 255, 255))


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def test_decompression_bomb_is_refused() -> None:
    with pytest.raises(PreviewRefused, match=r"DecompressionBomb|over the limit"):
        await render(_png_claiming(100_000, 100_000), REQ, seconds=60)


async def test_image_over_the_pixel_setting_is_refused() -> None:
    data = _save(Image.new("L", (1000, 1000)), "PNG")
    with pytest.raises(PreviewRefused):
        await render(data, replace(REQ, max_pixels=500_000), seconds=60)


async def test_pdf_page_over_the_point_limit_is_refused() -> None:
    # 2000 px at 5 dpi: a page of 28800 points
    data = _save(Image.new("RGB", (2000, 100)), "PDF", resolution=5.0)
    with pytest.raises(PreviewRefused, match="points"):
        await render(data, REQ, seconds=60)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff\xe0" + b"\x00garbage" * 100,
        _save(_halves(300, 300), "PNG")[:200],
        b"%PDF-1.4\n" + b"not a pdf at all" * 50,
    ],
    ids=["jpeg", "truncated-png", "pdf"],
)
async def test_corrupt_files_are_refused(data: bytes) -> None:
    with pytest.raises(PreviewRefused):
        await render(data, REQ, seconds=60)


async def test_unsupported_type_is_refused_without_a_process() -> None:
    with pytest.raises(PreviewRefused, match="unsupported"):
        await render(b"hello, world\n", REQ, seconds=60)


async def test_a_render_over_its_time_is_killed_and_refused() -> None:
    with pytest.raises(PreviewRefused, match="longer than"):
        await render(_save(_halves(800, 400), "PNG"), REQ, seconds=0.001)


def test_previewable_content_types() -> None:
    assert is_previewable("image/jpeg") and is_previewable("application/pdf; x=y")
    assert is_previewable("image/avif")
    assert not is_previewable("text/plain") and not is_previewable(None)
    assert is_previewable("image/heic")


def test_sizes_setting() -> None:
    assert parse_sizes("1024, 256,256") == (256, 1024)
    assert PreviewSettings().sizes() == (256, 1024)
    req = PreviewSettings(preview_sizes="512", preview_timeout_seconds=2.5).render_request()
    assert req.sizes == (512,) and req.cpu_seconds == 4 and req.format == "webp"
    for bad in ("", "abc", "8", "5000"):
        with pytest.raises(ValueError):
            parse_sizes(bad)


def _png_of_zeros(side: int) -> bytes:
    """A valid greyscale PNG of side x side black pixels, compressed to almost nothing
    (made in chunks: the test never holds the decoded size)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    z = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    parts = [z.compress(row) for _ in range(side)]
    idat = b"".join(parts) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def test_a_render_over_its_memory_limit_is_refused() -> None:
    # 300M pixels allowed, but 17000^2 bytes (289 MB) do not fit in 256 MiB of address space
    data = _png_of_zeros(17_000)
    req = replace(REQ, max_pixels=300_000_000, memory_bytes=256 * 1024 * 1024)
    with pytest.raises(PreviewRefused, match="memory"):
        await render(data, req, seconds=60)
