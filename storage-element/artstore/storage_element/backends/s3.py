"""S3 backend (AWS S3, MinIO, SeaweedFS): the local layout's keys under a bucket and prefix.

Keys: ``<prefix><storage path>`` for a blob, ``<prefix><storage path>.attr.json`` for its
attr, ``<prefix>quarantine/...`` for what was moved aside, ``<prefix>.artstore-se.json``
for the marker naming the SE that owns the prefix (see ``s3_owner``: an SE refuses to
start on a prefix another SE owns or shares). Nothing else is stored in the bucket;
``mode.json`` and the journal stay on local disk (``SE_DATA_DIR``, ``SE_WAL_DIR``).
Listing, counting and aborting multipart uploads look only at keys of this SE's layout
under its prefix (``<prefix>YYYY/...``).

Write protocol: the body is hashed as it arrives. A blob smaller than one part
(``SE_S3_PART_SIZE``) stays in memory and is PUT whole at publish; a larger one goes
out as a multipart upload on its final key, one part at a time, so at most about one
part is held. Neither is visible before ``publish``: a multipart upload shows up only
when completed. Publish completes it (or PUTs the small blob), then PUTs the attr (the
commit point). A crash can leave an uncompleted multipart upload (invisible, but it
holds space) or a blob without attr; recovery removes the blob through the journal and
``sweep_tmp`` aborts every multipart upload under the prefix.

Durability: a 2xx from S3 means the object is stored durably by the server's own rules;
nothing like fsync exists on the client side. (Tests run SeaweedFS with ``-fsync`` on
the bucket; see docs/storage-element.md.)

Every method blocks; callers run them in worker threads. One boto3 client is shared:
clients are thread-safe, and the pool is sized for many concurrent requests.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from artstore.storage_element.backends.base import BlobWriter, FaultPoint, Folder, folders_of
from artstore.storage_element.backends.quarantine_entries import (
    INFO_SUFFIX,
    QuarantinedEntry,
    group,
    new_entry,
)
from artstore.storage_element.backends.s3_owner import claim
from artstore.storage_element.backends.s3_presign import make_presigner
from artstore.storage_element.fsutil import fsync_dir, makedirs_durable
from artstore.storage_element.layout import ATTR_SUFFIX, Layout, safe_relative
from artstore.storage_element.settings import SESettings

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (all but the last)
QUARANTINE = "quarantine/"
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
# A storage path starts with its hour folder's year (layout.hour_folder).
_STORAGE_PATH = re.compile(r"^\d{4}/")
# Readiness asks the bucket with these bounds: a hung server must not hang the probe.
PROBE_TIMEOUT = 2.0


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING


def make_client(settings: SESettings, *, probe: bool = False) -> Any:
    """The shared client; ``probe=True``: short timeouts and no retries (readiness)."""
    config = Config(
        region_name=settings.s3_region,
        signature_version="s3v4",
        # MinIO and SeaweedFS serve buckets as paths, not as host names.
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1 if probe else 5, "mode": "standard"},
        connect_timeout=PROBE_TIMEOUT if probe else 5,
        read_timeout=PROBE_TIMEOUT if probe else 60,
        # Uploads, downloads and startup scans run in parallel worker threads.
        max_pool_connections=64,
        # Checksums "when required" only: the default CRC trailers are not understood by
        # every S3-compatible server, and over plain HTTP SigV4 already signs the
        # payload's SHA-256 (over HTTPS, TLS protects it).
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.s3_endpoint_url:
        kwargs["endpoint_url"] = settings.s3_endpoint_url
    if settings.s3_access_key_id:
        kwargs["aws_access_key_id"] = settings.s3_access_key_id
        kwargs["aws_secret_access_key"] = settings.s3_secret_access_key
    return boto3.session.Session().client("s3", **kwargs)


class S3BlobWriter:
    """A blob being received: in memory while small, a multipart upload once large."""

    def __init__(self, backend: S3Backend, key: str) -> None:
        self._b = backend
        self.key = key
        self.size = 0
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self.upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.body: bytes | None = None  # the whole blob when no multipart was started

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)
        self._buf += data
        part = self._b.part_size
        while len(self._buf) >= part:
            self._send_part(bytes(self._buf[:part]))
            del self._buf[:part]

    def _send_part(self, data: bytes) -> None:
        s3, bucket = self._b.s3, self._b.bucket
        if self.upload_id is None:
            created = s3.create_multipart_upload(Bucket=bucket, Key=self.key)
            self.upload_id = str(created["UploadId"])
        number = len(self._parts) + 1
        answer = s3.upload_part(
            Bucket=bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def finish(self) -> str:
        if self.upload_id is not None:
            if self._buf:
                self._send_part(bytes(self._buf))
        else:
            self.body = bytes(self._buf)
        self._buf = bytearray()
        return self._hash.hexdigest()

    def complete(self) -> None:
        """Make the blob visible under its key."""
        if self.upload_id is None:
            self._b.s3.put_object(Bucket=self._b.bucket, Key=self.key, Body=self.body or b"")
            self.body = None
            return
        self._b.s3.complete_multipart_upload(
            Bucket=self._b.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        self.upload_id = None

    def discard(self) -> None:
        self._buf = bytearray()
        self.body = None
        upload_id, self.upload_id = self.upload_id, None
        if upload_id is not None:
            self._b.abort_upload(self.key, upload_id)


class S3BlobReader:
    """One ranged GET, read in chunks as the client takes them."""

    def __init__(self, body: Any, length: int) -> None:
        self._body = body
        self._left = length

    def read(self, n: int) -> bytes:
        if self._left <= 0:
            return b""
        data = bytes(self._body.read(min(n, self._left)))
        if not data:
            raise OSError(f"object ended {self._left} bytes early")
        self._left -= len(data)
        return data

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


class S3Backend:
    name = "s3"

    def __init__(self, settings: SESettings, layout: Layout) -> None:
        if settings.s3_part_size < MIN_PART_SIZE:
            raise ValueError(f"SE_S3_PART_SIZE must be at least {MIN_PART_SIZE} bytes")
        self.layout = layout
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self.region = settings.s3_region
        self.part_size = settings.s3_part_size
        self.storage_id = settings.id
        self.s3 = make_client(settings)
        self._probe = make_client(settings, probe=True)
        # Downloads answered with a presigned URL (files/download.py); None = streamed.
        self.presigner = (
            make_presigner(settings, self.blob_key) if settings.s3_presigned_downloads else None
        )

    # -- keys ---------------------------------------------------------------------------
    def blob_key(self, storage_path: str) -> str:
        return self.prefix + safe_relative(storage_path)

    def attr_key(self, storage_path: str) -> str:
        return self.blob_key(storage_path) + ATTR_SUFFIX

    # -- setup and recovery -------------------------------------------------------------
    def prepare(self) -> None:
        # The local tmp/ stays: older versions left temp files there that sweep_tmp
        # still clears.
        makedirs_durable(self.layout.tmp_dir)
        self._ensure_bucket()
        claim(self.s3, self.bucket, self.prefix, self.storage_id)

    def check_ready(self) -> None:
        """Raise unless the bucket answers now (readiness; short timeout, no retries)."""
        self._probe.head_bucket(Bucket=self.bucket)

    def _ensure_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if not _missing(exc):
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.s3.create_bucket(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def sweep_tmp(self) -> int:
        removed = 0
        for entry in os.scandir(self.layout.tmp_dir):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
        if removed:
            fsync_dir(self.layout.tmp_dir)
        # Only this SE writes under its prefix, and sweeping runs before it takes
        # requests: every multipart upload found here was left by a crash.
        for key, upload_id in self.multipart_uploads():
            self.abort_upload(key, upload_id)
            removed += 1
        return removed

    def multipart_uploads(self) -> Iterator[tuple[str, str]]:
        """(key, upload id) of every uncompleted multipart upload under the prefix."""
        pages = self.s3.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for up in page.get("Uploads", []):
                key = str(up["Key"])
                if _STORAGE_PATH.match(key[len(self.prefix) :]):
                    yield key, str(up["UploadId"])

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if not _missing(exc):
                raise

    # -- writing ------------------------------------------------------------------------
    def new_writer(self, txn: str, storage_path: str) -> S3BlobWriter:
        return S3BlobWriter(self, self.blob_key(storage_path))

    def publish(
        self, writer: BlobWriter, attr: bytes, storage_path: str, fault: FaultPoint
    ) -> None:
        assert isinstance(writer, S3BlobWriter)
        fault("upload.after_tmp_attr")  # no temp attr on S3: the step is kept for the tests
        writer.complete()
        fault("upload.after_blob_rename")
        self.s3.put_object(Bucket=self.bucket, Key=self.attr_key(storage_path), Body=attr)
        fault("upload.after_attr_rename")
        fault("upload.after_dir_fsync")

    def replace_attr(self, storage_path: str, attr: bytes, fault: FaultPoint, kind: str) -> None:
        # A PUT replaces an object atomically: readers see the old or the new attr.
        fault(f"{kind}.after_tmp_attr")
        self.s3.put_object(Bucket=self.bucket, Key=self.attr_key(storage_path), Body=attr)
        fault(f"{kind}.after_attr_rename")

    def write_sidecar(self, path: str, data: bytes) -> None:
        # A completed PUT is durable and atomic: readers see the whole object or none.
        self.s3.put_object(Bucket=self.bucket, Key=self.blob_key(path), Body=data)

    def read_sidecar(self, path: str) -> bytes:
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=self.blob_key(path))
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(path) from exc
            raise
        with answer["Body"] as body:
            return bytes(body.read())

    def remove_blob(self, storage_path: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self.blob_key(storage_path))

    def remove_attr(self, storage_path: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self.attr_key(storage_path))

    # -- reading ------------------------------------------------------------------------
    def read_attr(self, storage_path: str) -> bytes:
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=self.attr_key(storage_path))
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(storage_path) from exc
            raise
        with answer["Body"] as body:
            return bytes(body.read())

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.s3.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def attr_exists(self, storage_path: str) -> bool:
        return self._head(self.attr_key(storage_path)) is not None

    def blob_size(self, storage_path: str) -> int | None:
        head = self._head(self.blob_key(storage_path))
        return None if head is None else int(head["ContentLength"])

    def blob_mtime(self, storage_path: str) -> float | None:
        head = self._head(self.blob_key(storage_path))
        return None if head is None else float(head["LastModified"].timestamp())

    def open_reader(self, storage_path: str, start: int, length: int) -> S3BlobReader:
        if length <= 0:
            return S3BlobReader(None, 0)  # a Range can't say "nothing"; no request needed
        try:
            answer = self.s3.get_object(
                Bucket=self.bucket,
                Key=self.blob_key(storage_path),
                Range=f"bytes={start}-{start + length - 1}",
            )
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(storage_path) from exc
            raise
        return S3BlobReader(answer["Body"], length)

    def quarantine(self, storage_path: str, info: bytes | None = None) -> str:
        """Copy aside, then delete: S3 has no rename, and nothing may be lost."""
        entry = new_entry(storage_path)
        dest = self._quarantine_key(entry)
        for src, suffix in (
            (self.attr_key(storage_path), ATTR_SUFFIX),
            (self.blob_key(storage_path), ""),
        ):
            if self._head(src) is None:
                continue
            # The managed copy switches to a multipart copy above 5 GB, where a single
            # CopyObject would be refused.
            self.s3.copy({"Bucket": self.bucket, "Key": src}, self.bucket, dest + suffix)
            self.s3.delete_object(Bucket=self.bucket, Key=src)
        if info is not None:
            self.s3.put_object(Bucket=self.bucket, Key=dest + INFO_SUFFIX, Body=info)
        return f"s3://{self.bucket}/{dest}"

    def _quarantine_key(self, entry: str, suffix: str = "") -> str:
        return f"{self.prefix}{QUARANTINE}{safe_relative(entry)}{suffix}"

    def quarantine_entries(self) -> Iterator[QuarantinedEntry]:
        # Keys come in UTF-8 order, one page at a time: an entry's parts are adjacent.
        start = f"{self.prefix}{QUARANTINE}"
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
        yield from group(
            (str(obj["Key"])[len(start) :], int(obj["Size"]))
            for page in pages
            for obj in page.get("Contents", [])
        )

    def quarantined_entry(self, entry: str) -> QuarantinedEntry | None:
        heads = {
            s: self._head(self._quarantine_key(entry, s)) for s in ("", ATTR_SUFFIX, INFO_SUFFIX)
        }
        if all(h is None for h in heads.values()):
            return None
        size = {s: None if h is None else int(h["ContentLength"]) for s, h in heads.items()}
        return QuarantinedEntry(entry, size[""], size[ATTR_SUFFIX], size[INFO_SUFFIX])

    def read_quarantined(self, entry: str, suffix: str) -> bytes | None:
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=self._quarantine_key(entry, suffix))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        with answer["Body"] as body:
            return bytes(body.read())

    def purge_quarantined(self, entry: str) -> int:
        freed = 0
        for suffix in ("", ATTR_SUFFIX, INFO_SUFFIX):
            key = self._quarantine_key(entry, suffix)
            head = self._head(key)
            if head is None:
                continue
            self.s3.delete_object(Bucket=self.bucket, Key=key)
            freed += int(head["ContentLength"])
        return freed

    def walk(self) -> Iterator[tuple[str, int]]:
        return self._listing("")

    def walk_folders(self, start_after: str = "", sizes: bool = True) -> Iterator[Folder]:
        # Keys come in UTF-8 byte order, which is str order: storage-path order.
        return folders_of(self._listing(start_after))

    def _listing(self, start_after: str) -> Iterator[tuple[str, int]]:
        """This SE's objects in key order, only those after ``start_after`` (S3's
        StartAfter: a resumed walk does not list what it skips)."""
        more = {"StartAfter": self.prefix + start_after} if start_after else {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, **more
        )
        for page in pages:
            for obj in page.get("Contents", []):
                rel = str(obj["Key"])[len(self.prefix) :]
                # Only this SE's layout: not quarantine/, the marker, or anything else.
                if not _STORAGE_PATH.match(rel) or rel.endswith("/"):
                    continue
                yield rel, int(obj["Size"])

    def fs_usage(self) -> tuple[int, int] | None:
        return None  # a bucket has no size: SE_MAX_CAPACITY is the capacity
