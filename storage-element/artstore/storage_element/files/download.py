"""Downloads: one Range, ETag and conditional requests, RFC 6266 file names (DESIGN §5.5)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from starlette.datastructures import Headers

from artstore.common.errors import FileGone, InvalidRange
from artstore.storage_element.attr.model import Attr
from artstore.storage_element.backends.base import BlobReader
from artstore.storage_element.node import StorageNode

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class Plan:
    status: int  # 200, 206 or 304
    start: int = 0
    length: int = 0


def etag_of(attr: Attr) -> str:
    return f'"{attr.checksum.removeprefix("sha256:")}"'


def last_modified(attr: Attr) -> datetime:
    return attr.uploaded_at.astimezone(UTC).replace(microsecond=0)


def content_disposition(filename: str) -> str:
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def ensure_downloadable(attr: Attr) -> None:
    expired = attr.expires_at is not None and attr.expires_at <= datetime.now(UTC)
    if attr.status != "active" or expired:
        status = "deleted" if attr.status == "deleted" else "expired"
        raise FileGone(
            f"file {attr.file_id} is {status}", details={"file_id": attr.file_id, "status": status}
        )


def _parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def plan(attr: Attr, headers: Headers) -> Plan:
    size, etag, modified = attr.size, etag_of(attr), last_modified(attr)
    inm = headers.get("if-none-match")
    if inm is not None:
        if _etag_matches(inm, etag):
            return Plan(304)
    elif (ims := headers.get("if-modified-since")) is not None:
        since = _parse_http_date(ims)
        if since is not None and modified <= since:
            return Plan(304)
    rng = headers.get("range")
    if rng is None:
        return Plan(200, 0, size)
    if_range = headers.get("if-range")
    if if_range is not None:
        if if_range.strip().startswith(('"', "W/")):
            if if_range.strip() != etag:
                return Plan(200, 0, size)
        else:
            at = _parse_http_date(if_range)
            if at is None or modified > at:
                return Plan(200, 0, size)
    m = _RANGE.match(rng.strip().replace(" ", ""))
    if m is None or (not m.group(1) and not m.group(2)):
        return Plan(200, 0, size)  # several ranges or bad syntax: RFC 9110 lets us ignore it
    first, last = m.group(1), m.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return Plan(200, 0, size)
    else:
        suffix = int(last)
        if suffix == 0:
            raise _unsatisfiable(size)
        start, end = max(0, size - suffix), size - 1
    if start >= size:
        raise _unsatisfiable(size)
    return Plan(206, start, end - start + 1)


def _unsatisfiable(size: int) -> InvalidRange:
    return InvalidRange(
        "range not satisfiable",
        details={"size": size},
        headers={"Content-Range": f"bytes */{size}"},
    )


def response_headers(attr: Attr, p: Plan) -> dict[str, str]:
    headers = {
        "ETag": etag_of(attr),
        "Last-Modified": format_datetime(last_modified(attr), usegmt=True),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-transform",
    }
    if p.status == 304:
        return headers
    headers["Content-Disposition"] = content_disposition(attr.original_filename)
    headers["Content-Length"] = str(p.length)
    if p.status == 206:
        headers["Content-Range"] = f"bytes {p.start}-{p.start + p.length - 1}/{attr.size}"
    return headers


async def open_reader(node: StorageNode, attr: Attr, p: Plan) -> BlobReader:
    return await asyncio.to_thread(node.backend.open_reader, attr.storage_path, p.start, p.length)


class CorruptBlob(Exception):
    """The bytes on disk no longer match the checksum: the transfer is cut short."""


async def stream(
    reader: BlobReader,
    chunk: int,
    expected_sha256: str | None = None,
    on_mismatch: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    """Yield the reader's range; the reader is closed whatever happens.

    With ``expected_sha256`` (a whole-file download) the last chunk is held back until
    the hash is known: on a mismatch the response ends short, so the client sees a
    failed transfer instead of silently bad bytes.
    """
    digest = hashlib.sha256() if expected_sha256 else None

    def read_next() -> bytes:
        data = reader.read(chunk)
        if digest is not None and data:
            digest.update(data)
        return data

    try:
        held = await asyncio.to_thread(read_next)
        while held:
            following = await asyncio.to_thread(read_next)
            if not following and digest is not None and digest.hexdigest() != expected_sha256:
                if on_mismatch is not None:
                    await on_mismatch()
                raise CorruptBlob("stored bytes do not match their checksum")
            yield held
            held = following
    finally:
        await asyncio.to_thread(reader.close)
