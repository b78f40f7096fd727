"""Rendering previews: Pillow for images, pypdfium2 for a PDF's first page.

Decoding hostile files is the riskiest thing the system does, so each file is rendered
in a child process of its own (``python -m artstore.worker.previews.render``) with an
address-space limit (RLIMIT_AS), a CPU-time limit and a wall-clock timeout: a bomb, a
decoder bug or a hang kills that child, never the worker. The original's bytes only
ever go *into* the child (stdin); nothing here can write to the stored file.

Protocol: argv[1] is the JSON of :class:`RenderRequest`, stdin the original's bytes;
on success the child writes, per size, ``size:u32 length:u64 bytes`` and exits 0; on a
refused or undecodable file it writes one line to stderr and exits 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
from dataclasses import asdict, dataclass
from typing import Any

from artstore.common.errors import ArtStoreError

_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_EXIT_REFUSED = 3
_FRAME = struct.Struct(">IQ")


def sniff(data: bytes) -> str | None:
    """The kind of ``data`` by its magic bytes, or None when unsupported."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "image/avif"  # Pillow's own AVIF decoder (libavif in its wheels)
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "image/heic"  # pillow-heif (libheif)
    if data[:1024].find(b"%PDF-") != -1:
        return "application/pdf"
    return None


class PreviewRefused(ArtStoreError):
    """The file cannot give a preview (unsupported, corrupt, too big, a bomb, too slow):
    recorded once as failed, never retried."""

    status = 422
    code = "PREVIEW_REFUSED"


@dataclass(frozen=True)
class RenderRequest:
    sizes: tuple[int, ...]
    format: str  # "webp" | "jpeg"
    quality: int
    max_pixels: int
    max_pdf_page_points: float
    memory_bytes: int
    cpu_seconds: int


async def render(data: bytes, req: RenderRequest, *, seconds: float) -> dict[int, bytes]:
    """Previews of ``data`` keyed by size, made in a limited child process; raises
    :class:`PreviewRefused` with the reason when none can be made."""
    if sniff(data) is None:
        raise PreviewRefused("unsupported file type")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "artstore.worker.previews.render",
        json.dumps(asdict(req)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(data), seconds)
    except TimeoutError:
        await _kill(proc)
        raise PreviewRefused(f"rendering took longer than {seconds:g} s") from None
    except asyncio.CancelledError:
        # the job was cancelled: no child is left behind, and it is no refusal of the file
        await asyncio.shield(_kill(proc))
        raise
    if proc.returncode == _EXIT_REFUSED:
        reason = err.decode("utf-8", "replace").strip().splitlines()
        raise PreviewRefused(reason[-1][:300] if reason else "refused")
    if proc.returncode != 0:
        # Killed by a limit (SIGKILL on RLIMIT_CPU, MemoryError abort) or crashed.
        raise PreviewRefused(f"rendering process ended with status {proc.returncode}")
    return _unframe(out, req.sizes)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


def _unframe(out: bytes, sizes: tuple[int, ...]) -> dict[int, bytes]:
    result: dict[int, bytes] = {}
    pos = 0
    while pos < len(out):
        size, length = _FRAME.unpack_from(out, pos)
        pos += _FRAME.size
        result[size] = out[pos : pos + length]
        pos += length
    if set(result) != set(sizes):
        raise PreviewRefused("rendering process gave an incomplete answer")
    return result


# --- the child process ------------------------------------------------------------


def _limit(req: RenderRequest) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (req.memory_bytes, req.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (req.cpu_seconds, req.cpu_seconds + 1))


def _open_image(data: bytes, req: RenderRequest, kind: str) -> Any:
    import io
    import warnings

    from PIL import Image, ImageOps

    if kind == "image/heic":
        import pillow_heif

        pillow_heif.register_heif_opener()

    Image.MAX_IMAGE_PIXELS = req.max_pixels
    # Pillow only warns between 1x and 2x its limit: a warning is a refusal here.
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    im = Image.open(io.BytesIO(data))
    if im.width * im.height > req.max_pixels:
        raise ValueError(f"{im.width}x{im.height} pixels is over the limit")
    if im.format == "JPEG":
        # Decode at a reduced scale when the largest preview allows (much faster).
        im.draft("RGB", (max(req.sizes), max(req.sizes)))
    im.seek(0)  # an animation's first frame
    im.load()
    return ImageOps.exif_transpose(im)


def _open_pdf(data: bytes, req: RenderRequest) -> Any:
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    pdf = pdfium.PdfDocument(data)
    if len(pdf) < 1:
        raise ValueError("the PDF has no page")
    page = pdf[0]
    w, h = page.get_size()
    if not (0 < w <= req.max_pdf_page_points and 0 < h <= req.max_pdf_page_points):
        raise ValueError(f"the first page is {w:g}x{h:g} points, over the limit")
    scale = max(req.sizes) / max(w, h)
    if (w * scale) * (h * scale) > req.max_pixels:
        raise ValueError("the rendered page would be over the pixel limit")
    return page.render(scale=scale).to_pil()


def _normalise(im: Any, fmt: str) -> Any:
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: scale to 8 bits (a plain convert clips to white)
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    elif im.mode == "F":
        im = im.convert("L")
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")
    if im.mode == "LA":
        im = im.convert("RGBA")
    if im.mode not in ("L", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, 1...
    if fmt == "jpeg" and im.mode == "RGBA":
        flat = Image.new("RGB", im.size, (255, 255, 255))
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    return im


def _encode(im: Any, size: int, req: RenderRequest) -> bytes:
    import io

    from PIL import Image

    out = im.copy()
    out.thumbnail((size, size), Image.Resampling.LANCZOS)
    # A new image from the pixels alone: no EXIF, XMP, ICC or comment is carried over.
    clean = Image.frombytes(out.mode, out.size, out.tobytes())
    buf = io.BytesIO()
    if req.format == "jpeg":
        clean.save(buf, "JPEG", quality=req.quality, optimize=True)
    else:
        clean.save(buf, "WEBP", quality=req.quality, method=4)
    return buf.getvalue()


def _child(argv: list[str]) -> int:
    raw = json.loads(argv[1])
    raw["sizes"] = tuple(raw["sizes"])
    req = RenderRequest(**raw)
    _limit(req)
    data = sys.stdin.buffer.read()
    try:
        kind = sniff(data)
        if kind is None:
            raise ValueError("unsupported file type")
        im = _open_pdf(data, req) if kind == "application/pdf" else _open_image(data, req, kind)
        im = _normalise(im, req.format)
        frames = [(size, _encode(im, size, req)) for size in req.sizes]
    except MemoryError:
        sys.stderr.write("rendering needed more memory than allowed\n")
        return _EXIT_REFUSED
    except Exception as e:  # any decoder error is a refusal of this file, reported once
        first = (str(e).splitlines() or [""])[0]
        sys.stderr.write(f"{type(e).__name__}: {first}\n")
        return _EXIT_REFUSED
    write = sys.stdout.buffer.write
    for size, blob in frames:
        write(_FRAME.pack(size, len(blob)))
        write(blob)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv))
