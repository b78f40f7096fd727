"""A tus 1.0 client for resumable uploads (architecture §7): creation, PATCH in chunks with
the checksum extension, HEAD to find where to resume.

The upload URL is remembered in ``<config dir>/uploads/`` under a key made of the
file's absolute path, size and modification time, so running the same upload again
after a crash or a dropped connection continues where the server says it stopped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO
from urllib.parse import urljoin

import httpx

from artstore.client.api import nothing
from artstore.client.credentials import write_private
from artstore.client.errors import (
    ApiError,
    ArtStoreClientError,
    ConflictError,
    GoneError,
    NotFoundError,
    ServiceConnectionError,
)
from artstore.client.files import Progress, UploadOptions
from artstore.client.http import Call, SyncTransport
from artstore.client.models import FileMetadata

TUS_VERSION = "1.0.0"
UPLOADS_PATH = "/api/v1/uploads"
FILE_ID_HEADERS = ("upload-file-id", "x-file-id", "artstore-file-id")


def encode_metadata(fields: Mapping[str, str]) -> str:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs."""
    return ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items() if v != ""
    )


def tus_metadata(filename: str, content_type: str, options: UploadOptions) -> dict[str, str]:
    fields = {"filename": filename, "content_type": content_type, "filetype": content_type}
    if options.description is not None:
        fields["description"] = options.description
    if options.tags:
        fields["tags"] = json.dumps(list(options.tags))
    if options.metadata:
        fields["metadata"] = json.dumps(dict(options.metadata))
    if options.retention_policy is not None:
        fields["retention_policy"] = options.retention_policy
    if options.ttl_days is not None:
        fields["ttl_days"] = str(options.ttl_days)
    return fields


class ResumeState:
    """Where an unfinished upload of one local file lives on the server."""

    def __init__(self, directory: Path | None, path: Path, server: str) -> None:
        st = path.stat()
        key = hashlib.sha256(
            f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{server}".encode()
        ).hexdigest()[:32]
        self.file = directory / "uploads" / f"{key}.json" if directory else None

    def load(self) -> str | None:
        if self.file is None:
            return None
        try:
            return str(json.loads(self.file.read_text())["url"])
        except (OSError, ValueError, KeyError):
            return None

    def save(self, url: str) -> None:
        if self.file is not None:
            write_private(self.file, {"url": url})

    def clear(self) -> None:
        if self.file is not None:
            self.file.unlink(missing_ok=True)


class TusUpload:
    def __init__(
        self,
        transport: SyncTransport,
        path: Path,
        options: UploadOptions,
        content_type: str,
        *,
        chunk_size: int = 8 * 1024 * 1024,
        progress: Progress | None = None,
        state_dir: Path | None = None,
        max_stalls: int = 5,
    ) -> None:
        self.t = transport
        self.path = path
        self.size = path.stat().st_size
        self.options = options
        self.content_type = content_type
        self.chunk_size = chunk_size
        self.progress = progress
        self.max_stalls = max_stalls
        self.state = ResumeState(state_dir, path, transport.config.ingester_url)
        self.resumed_from = 0

    # -- protocol steps ----------------------------------------------------------------------
    def _call(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None,
              ) -> Call[None]:  # fmt: skip
        return Call(method, "ingester", "", nothing, base_url=url, body=(lambda: body) if body
                    is not None else None, headers={"Tus-Resumable": TUS_VERSION, **headers},
                    idempotent=method == "HEAD")  # fmt: skip

    def create(self) -> str:
        filename = self.options.filename or self.path.name
        meta = encode_metadata(tus_metadata(filename, self.content_type, self.options))
        base = self.t.config.ingester_url + UPLOADS_PATH
        headers = {"Upload-Length": str(self.size), "Upload-Metadata": meta,
                   "Content-Length": "0"}  # fmt: skip
        with self.t.open(self._call("POST", base, headers)) as r:
            location = r.headers.get("location")
        if not location:
            raise ArtStoreClientError("the ingester created an upload without a Location",
                                      code="TUS_PROTOCOL")  # fmt: skip
        url = str(urljoin(base + "/", location))
        self.state.save(url)
        return url

    def offset(self, url: str) -> int:
        with self.t.open(self._call("HEAD", url, {})) as r:
            value = r.headers.get("upload-offset", "")
        if not value.isdigit():
            raise ArtStoreClientError("HEAD answered no Upload-Offset", code="TUS_PROTOCOL")
        return int(value)

    def patch(self, url: str, offset: int, chunk: bytes) -> httpx.Response:
        digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        headers = {
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            "Upload-Checksum": f"sha256 {digest}",
        }
        with self.t.open(self._call("PATCH", url, headers, chunk)) as r:
            r.read()
            return r

    # -- the whole upload -------------------------------------------------------------------
    def run(self) -> FileMetadata | str:
        """Upload (or finish uploading) the file; the stored file's metadata when the
        ingester's last answer carries it, else its id."""
        url = self.state.load()
        offset = 0
        if url is not None:
            try:
                offset = self.offset(url)
                self.resumed_from = offset
            except (NotFoundError, GoneError):
                self.state.clear()
                url = None
        if url is None:
            url = self.create()
        stalls = 0
        last: httpx.Response | None = None
        with open(self.path, "rb") as f:
            while offset < self.size or last is None:
                chunk = _read_at(f, offset, self.chunk_size)
                try:
                    last = self.patch(url, offset, chunk)
                except (ConflictError, ServiceConnectionError, ApiError) as exc:
                    if not _resyncable(exc) or stalls >= self.max_stalls:
                        raise
                    stalls += 1
                    time.sleep(self.t.config.retry.delay(stalls - 1))
                    offset = self.offset(url)  # the server is the judge of where we are
                    continue
                new = last.headers.get("upload-offset", "")
                offset = int(new) if new.isdigit() else offset + len(chunk)
                stalls = 0
                if self.progress is not None:
                    self.progress(offset, self.size)
                if self.size == 0:
                    break
        self.state.clear()
        return self._result(url, last)

    def _result(self, url: str, last: httpx.Response | None) -> FileMetadata | str:
        if last is not None:
            if last.headers.get("content-type", "").startswith("application/json"):
                try:
                    return FileMetadata.model_validate(last.json())
                except ValueError:
                    pass
            for name in FILE_ID_HEADERS:
                if last.headers.get(name):
                    return str(last.headers[name])
        with self.t.open(self._call("HEAD", url, {})) as r:
            for name in FILE_ID_HEADERS:
                if r.headers.get(name):
                    return str(r.headers[name])
        raise ArtStoreClientError(
            "upload finished but the ingester did not say which file it became",
            code="TUS_PROTOCOL",
        )


def _read_at(f: IO[bytes], offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _resyncable(exc: ArtStoreClientError) -> bool:
    # 409: our offset is not the server's; 460: checksum mismatch (tus); 5xx and dropped
    # connections: the chunk may or may not have landed. HEAD tells which.
    if isinstance(exc, ServiceConnectionError | ConflictError):
        return True
    return exc.status is not None and (exc.status == 460 or exc.status >= 500)
