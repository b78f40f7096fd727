"""Streaming transfers: upload from a path, file object or iterator; download to a path
with resume (``Range`` + ``If-Range``) and SHA-256 verification against the ETag.

Neither direction holds a whole file in memory: bodies go out and come in in
``chunk_size`` pieces, hashed on the way.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from artstore.client.api import model, nothing
from artstore.client.errors import (
    ApiError,
    ArtStoreClientError,
    ChecksumMismatchError,
    ServiceConnectionError,
)
from artstore.client.http import Call
from artstore.client.models import DownloadResult, FileMetadata

Progress = Callable[[int, int | None], None]
"""Called with (bytes done, total bytes or None) as a transfer advances."""

Source = str | os.PathLike[str] | IO[bytes] | Iterable[bytes]


@dataclass
class UploadOptions:
    """The fields an upload carries besides its bytes (architecture §7)."""

    filename: str | None = None
    description: str | None = None
    tags: Sequence[str] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    retention_policy: str | None = None  # "temporary" | "permanent"; ingester default
    ttl_days: int | None = None
    content_type: str | None = None

    def query(self, filename: str) -> list[tuple[str, str]]:
        params = [("filename", filename)]
        if self.description is not None:
            params.append(("description", self.description))
        params += [("tags", t) for t in self.tags]
        if self.metadata:
            params.append(("metadata", json.dumps(dict(self.metadata), separators=(",", ":"))))
        if self.retention_policy is not None:
            params.append(("retention_policy", self.retention_policy))
        if self.ttl_days is not None:
            params.append(("ttl_days", str(self.ttl_days)))
        return params


class _Hashing:
    """Yields a source's chunks while hashing and counting them."""

    def __init__(self, progress: Progress | None, total: int | None) -> None:
        self.progress = progress
        self.total = total
        self.sha = hashlib.sha256()
        self.done = 0

    def feed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if not chunk:
                continue
            self.sha.update(chunk)
            self.done += len(chunk)
            if self.progress is not None:
                self.progress(self.done, self.total)
            yield chunk


def read_chunks(f: IO[bytes], chunk_size: int) -> Iterator[bytes]:
    while chunk := f.read(chunk_size):
        yield chunk


@dataclass
class PreparedUpload:
    """An upload as a replayable :class:`Call` plus the hash of what was last sent."""

    call: Call[FileMetadata]
    state: list[_Hashing]

    def verify(self, stored: FileMetadata) -> FileMetadata:
        sent = self.state[-1].sha.hexdigest() if self.state else None
        if sent is not None and stored.sha256 != sent:
            raise ChecksumMismatchError(
                f"{stored.original_filename}: stored checksum {stored.sha256} differs from "
                f"what was sent ({sent})"
            )
        return stored


def prepare_upload(
    source: Source,
    options: UploadOptions,
    chunk_size: int,
    progress: Progress | None = None,
) -> PreparedUpload:
    """``PUT /api/v1/files/upload?filename=...`` with the raw file as the body."""
    state: list[_Hashing] = []
    headers: dict[str, str] = {}
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ArtStoreClientError(f"{path}: not a readable file", code="NOT_A_FILE")
        filename = options.filename or path.name
        total: int | None = path.stat().st_size

        def body() -> Iterator[bytes]:
            hashing = _Hashing(progress, total)
            state.append(hashing)

            def chunks() -> Iterator[bytes]:
                with open(path, "rb") as f:
                    yield from read_chunks(f, chunk_size)

            return hashing.feed(chunks())

    elif hasattr(source, "read"):
        f: IO[bytes] = source  # type: ignore[assignment]
        filename = options.filename or Path(str(getattr(f, "name", "") or "upload.bin")).name
        start = f.tell() if f.seekable() else None
        total = None

        def body() -> Iterator[bytes]:
            if state:
                if start is None:
                    raise ArtStoreClientError("cannot send a one-way stream twice", code="RETRY")
                f.seek(start)
            hashing = _Hashing(progress, total)
            state.append(hashing)
            return hashing.feed(read_chunks(f, chunk_size))

    else:
        it: Iterable[bytes] = source
        filename = options.filename or "upload.bin"
        total = None

        def body() -> Iterator[bytes]:
            if state:
                raise ArtStoreClientError("cannot send a one-way stream twice", code="RETRY")
            hashing = _Hashing(progress, total)
            state.append(hashing)
            return hashing.feed(it)

    if total is not None:
        headers["Content-Length"] = str(total)
    headers["Content-Type"] = (
        options.content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    )
    call = Call(
        "PUT",
        "ingester",
        "/api/v1/files/upload",
        model(FileMetadata),
        params=options.query(filename),
        body=body,
        headers=headers,
        idempotent=False,  # a repeated PUT would store a second file
        timeout=3600,
    )
    return PreparedUpload(call, state)


# -- download -----------------------------------------------------------------------------
def download_call(file_id: str, headers: Mapping[str, str]) -> Call[None]:
    from urllib.parse import quote

    return Call("GET", "query", f"/api/v1/files/{quote(file_id, safe='')}/download", nothing,
                headers={"Accept": "*/*", **headers}, idempotent=True,
                timeout=3600)  # fmt: skip


def etag_sha256(etag: str | None) -> str | None:
    if not etag:
        return None
    value = etag.removeprefix("W/").strip('"')
    return value.removeprefix("sha256:").lower() or None


class PartialDownload:
    """``<dest>.part`` (the bytes so far) and ``<dest>.part.json`` (which file and ETag
    they belong to). Resuming needs both: the ETag goes into ``If-Range`` so a changed
    file restarts from zero instead of being spliced."""

    def __init__(self, dest: Path, file_id: str) -> None:
        self.dest = dest
        self.file_id = file_id
        self.part = dest.with_name(dest.name + ".part")
        self.meta = dest.with_name(dest.name + ".part.json")
        self.etag: str | None = None
        self.total: int | None = None
        self.sha = hashlib.sha256()
        self.offset = 0
        self._file: IO[bytes] | None = None
        self._load()

    def _load(self) -> None:
        try:
            meta = json.loads(self.meta.read_text())
            size = self.part.stat().st_size
        except (OSError, ValueError):
            self.discard()
            return
        if meta.get("file_id") != self.file_id or not meta.get("etag"):
            self.discard()
            return
        self.etag = str(meta["etag"])
        self.total = meta.get("total")
        with open(self.part, "rb") as f:  # the hash must cover the bytes already here
            for chunk in read_chunks(f, 1024 * 1024):
                self.sha.update(chunk)
        self.offset = size

    def discard(self) -> None:
        self.close()
        self.part.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)
        self.etag, self.total, self.offset = None, None, 0
        self.sha = hashlib.sha256()

    def request_headers(self) -> dict[str, str]:
        if self.offset > 0 and self.etag:
            return {"Range": f"bytes={self.offset}-", "If-Range": self.etag}
        return {}

    def begin(self, response: httpx.Response) -> None:
        """Open the part for this answer: append on 206, start over on 200."""
        etag = response.headers.get("etag")
        for hop in response.history:
            # A presigned redirect (issue 16): S3 answers with its own ETag; the file's
            # SHA-256 one came on the 307, and verifying and resuming need that one.
            if len(etag_sha256(hop.headers.get("etag")) or "") == 64:
                etag = hop.headers["etag"]
        if response.status_code == 206 and self.offset > 0:
            start, total = _content_range(response.headers.get("content-range"))
            if start != self.offset:
                raise ArtStoreClientError(
                    f"server resumed at byte {start}, expected {self.offset}", code="BAD_RANGE"
                )
            self.total = total
            mode = "ab"
        else:
            self.discard()
            length = response.headers.get("content-length")
            self.total = int(length) if length and length.isdigit() else None
            mode = "wb"
        self.etag = etag or self.etag
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        meta = {"file_id": self.file_id, "etag": self.etag, "total": self.total}
        self.meta.write_text(json.dumps(meta))
        self._file = open(self.part, mode)  # noqa: SIM115 - closed in close()/finish()

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self.sha.update(chunk)
        self.offset += len(chunk)

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def complete(self) -> bool:
        return self.total is not None and self.offset >= self.total

    def finish(self) -> str:
        """Verify against the ETag and move the part to its final name."""
        self.close()
        digest = self.sha.hexdigest()
        expected = etag_sha256(self.etag)
        if expected is not None and len(expected) == 64 and digest != expected:
            self.discard()
            raise ChecksumMismatchError(
                f"{self.dest.name}: downloaded bytes hash to {digest}, expected {expected}"
            )
        os.replace(self.part, self.dest)
        self.meta.unlink(missing_ok=True)
        return digest


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    # "bytes 100-199/1000"
    try:
        assert value is not None
        span, total = value.removeprefix("bytes ").split("/")
        return int(span.split("-")[0]), (None if total == "*" else int(total))
    except (AssertionError, ValueError):
        return None, None


@dataclass
class DownloadPlan:
    """The resume loop's decisions, shared by the sync and async clients."""

    file_id: str
    dest: Path
    max_resumes: int
    progress: Progress | None = None
    partial: PartialDownload = field(init=False)
    resumed_from: int = field(init=False)
    interruptions: int = 0
    reset_once: bool = False

    def __post_init__(self) -> None:
        self.partial = PartialDownload(self.dest, self.file_id)
        self.resumed_from = self.partial.offset

    def call(self) -> Call[None]:
        return download_call(self.file_id, self.partial.request_headers())

    def chunk(self, data: bytes) -> None:
        self.partial.write(data)
        if self.progress is not None:
            self.progress(self.partial.offset, self.partial.total)

    def on_api_error(self, exc: ApiError) -> bool:
        """True to try again from zero: a 416 means our part no longer fits the file."""
        if exc.status == 416 and self.partial.offset > 0 and not self.reset_once:
            self.reset_once = True
            self.partial.discard()
            self.resumed_from = 0
            return True
        self.partial.close()
        return False

    def on_interrupted(self, exc: Exception) -> bool:
        """True to resume after a dropped connection (the part is kept either way)."""
        self.partial.close()
        self.interruptions += 1
        return self.interruptions <= self.max_resumes

    def interrupted_error(self, exc: Exception) -> ServiceConnectionError:
        if isinstance(exc, ServiceConnectionError):
            return exc
        return ServiceConnectionError(
            f"download of {self.file_id} interrupted at byte {self.partial.offset} "
            f"({type(exc).__name__}); run it again to resume"
        )

    def finish(self) -> DownloadResult:
        digest = self.partial.finish()
        return DownloadResult(
            path=str(self.dest),
            size=self.partial.offset,
            sha256=digest,
            resumed_from=self.resumed_from,
        )


def interrupted(exc: BaseException) -> bool:
    """A failure after which resuming with Range makes sense."""
    return isinstance(exc, httpx.TransportError | ServiceConnectionError)


def as_dict(meta: FileMetadata) -> dict[str, Any]:
    return meta.model_dump(mode="json", exclude_none=True)
