"""Downloads: one Range, ETag and conditional requests, RFC 6266 file names (architecture §5.5)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from artstore.common.asgi import until_disconnect
from artstore.common.errors import FileGone, InvalidRange
from artstore.contracts.se import NO_REDIRECT_HEADER
from artstore.storage_element import bitrot
from artstore.storage_element.attr.model import Attr
from artstore.storage_element.backends.base import BlobReader
from artstore.storage_element.backends.s3_presign import presigner_of
from artstore.storage_element.state import SEState
from artstore.storage_element.store.errors import NotFound

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
# Positions past any file's size: more digits than that are "huge", not parsed (int()
# refuses 4300+ digits, and a 5000-digit Range used to be a 500).
_MAX_DIGITS = 19
_HUGE = 10**_MAX_DIGITS


def _position(digits: str) -> int:
    significant = digits.lstrip("0")
    return _HUGE if len(significant) > _MAX_DIGITS else int(significant or "0")


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
        start = _position(first)
        end = min(_position(last), size - 1) if last else size - 1
        if last and _position(last) < start:
            return Plan(200, 0, size)
    else:
        suffix = _position(last)
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


# Validators S3 would compare against its own (MD5-based ETag, its own Last-Modified):
# a request carrying one is streamed by the SE, which compares them with the file's.
_S3_WOULD_JUDGE = ("if-range", "if-match", "if-unmodified-since")


async def presigned_redirect(
    node: SEState, attr: Attr, p: Plan, method: str, headers: Headers
) -> Response | None:
    """A 307 to a presigned S3 URL for this download, or None to stream it.

    Only after every check of an ordinary download (mode, status, expiry, quarantine,
    Range, conditional requests): 304 and 416 are the SE's. Streamed instead: HEAD (the
    SE answers it, no bytes), a caller that asks for it (``NO_REDIRECT_HEADER``), a
    Range the SE ignored (several ranges, bad syntax: S3 might read it otherwise) and
    the validators in ``_S3_WOULD_JUDGE``.
    """
    presigner = presigner_of(node.backend)
    if presigner is None or method != "GET" or p.status not in (200, 206):
        return None
    if NO_REDIRECT_HEADER.lower() in headers or any(h in headers for h in _S3_WOULD_JUDGE):
        return None
    if p.status == 200 and "range" in headers:
        return None
    url = await asyncio.to_thread(
        presigner.url,
        attr.storage_path,
        disposition=content_disposition(attr.original_filename),
        content_type=attr.content_type,
    )
    if url is None:
        return None
    # no-store: the URL expires, so neither the client nor a proxy may keep this answer.
    # ETag: S3 answers with its own (MD5-based); ours lets a client verify the SHA-256
    # of what S3 sent and resume with If-Range (artstore.client does both).
    answer = {"Location": url, "Cache-Control": "no-store", "ETag": etag_of(attr)}
    return Response(status_code=307, headers=answer)


class CorruptBlob(Exception):
    """The bytes on disk no longer match the checksum: the transfer is cut short."""


HOLD_BACK = 64 * 1024


class BlobBody:
    """The bytes of one planned range, read ``chunk`` at a time in a worker thread.

    Each :meth:`read_step` is one thread hop that reads the next chunk (hashing it, for a
    whole-file download: ``expected`` given) and closes the reader after the last one.
    The last chunk is hashed in its own hop while all but its final ``HOLD_BACK`` bytes
    are sent (:meth:`verify_last`), so the hash overlaps the transfer; the held-back
    bytes go only once the hash matched. A corrupt copy thus ends the response short
    instead of delivering silently bad bytes. A last chunk of at most ``HOLD_BACK``
    bytes is hashed in its read hop, as are all the others.

    The hash is ``hasher`` (the attr's bit-rot hash, issue 19: ``bitrot.verifier``),
    SHA-256 when none is given; ``expected`` is its hex digest.
    """

    def __init__(
        self,
        reader: BlobReader,
        length: int,
        chunk: int,
        expected: str | None,
        hasher: bitrot.Hasher | None = None,
    ) -> None:
        self.reader = reader
        self.left = length
        self.chunk = max(1, chunk)
        self.expected = expected
        self.digest: bitrot.Hasher | None = None
        if expected:
            self.digest = hasher if hasher is not None else hashlib.sha256()
        self.corrupt = False
        self.unhashed: bytes | None = None  # the last chunk, when verify_last owes its hash
        self.tail = b""  # with it: the held-back end of the file
        self.closed = False
        self.lock = threading.RLock()

    @classmethod
    async def open(cls, node: SEState, attr: Attr, p: Plan, chunk: int) -> tuple[BlobBody, bytes]:
        """Open the range and read its first chunk in one thread hop (errors here are
        still ordinary error answers: nothing has been sent)."""
        return await asyncio.to_thread(cls.open_sync, node, attr, p, chunk)

    @classmethod
    def open_sync(cls, node: SEState, attr: Attr, p: Plan, chunk: int) -> tuple[BlobBody, bytes]:
        """:meth:`open`, blocking (in a worker thread)."""
        hasher, expected = None, None
        if p.start == 0 and p.length == attr.size:  # whole: the bit-rot hash, else SHA-256
            hasher, expected, _ = bitrot.verifier(attr)
        reader = node.backend.open_reader(attr.storage_path, p.start, p.length)
        body = cls(reader, p.length, chunk, expected, hasher)
        try:
            return body, body.read_step()
        except BaseException:
            body.close_now()
            raise

    @property
    def done(self) -> bool:
        return self.left <= 0

    def read_step(self) -> bytes:
        """The next chunk (blocking: call it in a thread); closes the reader after the last."""
        with self.lock:  # never closed under a read still running in a thread
            if self.closed:
                return b""
            try:
                # A verified last chunk over HOLD_BACK is read as two pieces (no slicing
                # copy): its body, sent while verify_last hashes, and the held-back tail.
                split = self.digest is not None and HOLD_BACK < self.left <= self.chunk
                n = self.left - HOLD_BACK if split else min(self.chunk, self.left)
                data = self.reader.read(n) if n > 0 else b""
                if not data and self.left > 0:
                    raise OSError(f"blob ended {self.left} bytes early")
                self.left -= len(data)
                if self.digest is not None:
                    if split and self.left == HOLD_BACK:
                        self.tail = self._read_exactly(HOLD_BACK)
                        self.left = 0
                        self.unhashed = data
                    else:
                        self.digest.update(data)
                        if self.left <= 0 and self.digest.hexdigest() != self.expected:
                            self.corrupt = True
            except BaseException:
                self.close_now()
                raise
            if self.left <= 0:
                self.close_now()
            return data

    def _read_exactly(self, n: int) -> bytes:
        parts = []
        while n > 0:
            piece = self.reader.read(n)
            if not piece:
                raise OSError(f"blob ended {n} bytes early")
            parts.append(piece)
            n -= len(piece)
        return b"".join(parts)

    def verify_last(self) -> None:
        """Hash the last chunk and its tail, settle ``corrupt`` (blocking: in a thread)."""
        if self.unhashed is not None and self.digest is not None:
            self.digest.update(self.unhashed)
            self.digest.update(self.tail)
            self.unhashed = None
            self.corrupt = self.digest.hexdigest() != self.expected

    def close_now(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.reader.close()

    async def aclose(self) -> None:
        if not self.closed:
            await asyncio.to_thread(self.close_now)


@dataclass(frozen=True)
class Opened:
    """What :func:`open_download` found: the attr, its plan, and for a streamed answer
    the opened body with its first chunk (``body`` None: no bytes to send from here,
    or a presigned redirect to consider first)."""

    attr: Attr
    plan: Plan
    headers: dict[str, str]
    body: BlobBody | None = None
    first: bytes = b""


async def open_download(
    node: SEState, file_id: str, headers: Headers, method: str, chunk: int
) -> Opened:
    """Find the attr, check it (status, expiry), plan the answer (Range, conditional
    requests) with its headers and, for a GET streamed from here, open the range and
    read its first chunk: all in ONE thread hop, where reading the attr and opening the
    blob used to be two (issue 19: a hop is a large part of a small download's CPU).
    The checks are the same pure functions, in the same order, as before; an error
    raised in the thread is an ordinary error answer (nothing has been sent). A backend
    that may presign gets the body opened later, after :func:`presigned_redirect` (a
    second hop, as before)."""
    stream = method == "GET" and presigner_of(node.backend) is None

    def hop() -> Opened:
        attr = node.store.find_sync(file_id)
        if attr is None:
            raise NotFound(f"file {file_id} not found", details={"file_id": file_id})
        ensure_downloadable(attr)
        p = plan(attr, headers)
        answer = response_headers(attr, p)  # before the open: nothing raises after it
        if not stream or p.status == 304:
            return Opened(attr, p, answer)
        body, first = BlobBody.open_sync(node, attr, p, chunk)
        return Opened(attr, p, answer, body, first)

    return await asyncio.to_thread(hop)


class BlobResponse(Response):
    """A lean streaming answer for :class:`BlobBody`: one ``http.response.body`` message
    per chunk (two for the last: the held-back tail goes after the hash), sent as it is
    read (the next chunk is read while this one is sent), no iterator protocol and no
    task group per response. A body of more than one chunk watches for the client going
    away (uvicorn drops what is sent after a disconnect without telling) and stops
    reading then."""

    def __init__(
        self,
        body: BlobBody,
        first: bytes,
        status_code: int,
        headers: dict[str, str],
        media_type: str | None,
        on_mismatch: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, headers=headers, media_type=media_type)
        self.blob = body
        self.first = first
        self.on_mismatch = on_mismatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, data = self.blob, self.first
        self.first = b""
        watcher: asyncio.Task[None] | None = None
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code,
                 "headers": self.raw_headers}
            )  # fmt: skip
            if not body.done:
                watcher = asyncio.ensure_future(until_disconnect(receive))
            while not body.done:
                reading = asyncio.ensure_future(asyncio.to_thread(body.read_step))
                await send({"type": "http.response.body", "body": data, "more_body": True})
                data = await reading
                if watcher is not None and watcher.done():
                    return  # the client is gone: stop reading
            if body.unhashed is not None:
                check = asyncio.ensure_future(asyncio.to_thread(body.verify_last))
                await send({"type": "http.response.body", "body": data, "more_body": True})
                await check
                data = body.tail
            if body.corrupt:
                if self.on_mismatch is not None:
                    await self.on_mismatch()
                raise CorruptBlob("stored bytes do not match their checksum")
            await send({"type": "http.response.body", "body": data, "more_body": False})
        finally:
            if watcher is not None:
                watcher.cancel()
            await body.aclose()  # waits, in its thread, for a read still running
