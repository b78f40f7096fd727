"""Which storage element a bucket (or a prefix of it) belongs to: the ownership marker.

An SE lists, counts and aborts everything under its prefix. Two SEs whose key spaces
overlap (both without a prefix, or one prefix inside the other) would count each other's
objects and abort each other's multipart uploads. So at start an SE *claims* its prefix:

1. No SE may own a prefix above it (the empty prefix, or a parent ``a/`` of ``a/b/``):
   that SE would see our objects as its own. Its marker there refuses the start.
2. The marker ``<prefix>.artstore-se.json`` names the SE owning the prefix. Another id
   there refuses the start.
3. With no marker yet, the prefix's level must hold nothing but this SE's layout (``YYYY/``
   hour folders and ``quarantine/``): anything else (``se-2/``, a stray object) means the
   bucket is shared already, and the start is refused. Data of an SE from before markers
   passes, so upgrading needs nothing.
4. Then the marker is written (``If-None-Match: *`` where the server supports it) and
   read back: of two SEs claiming at once, the one that does not read its own id refuses.

A refused start raises ``BucketNotOurs``; the app's startup fails and the process exits
non-zero with the reason logged.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

log = logging.getLogger("artstore.storage_element.s3")

MARKER = ".artstore-se.json"
# What this SE's layout puts directly under its prefix (folders end with "/").
OWN_FOLDER = re.compile(r"^(\d{4}|quarantine)/$")
_MISSING = {"404", "NoSuchKey", "NotFound"}
_UNSUPPORTED = {"NotImplemented", "501", "InvalidArgument", "InvalidRequest"}


class BucketNotOurs(RuntimeError):
    """The bucket (or prefix) belongs to another storage element, or is shared."""


def ancestors(prefix: str) -> list[str]:
    """The prefixes above ``prefix``: ``""`` and each parent folder (``a/`` of ``a/b/``)."""
    if not prefix:
        return []
    parts = prefix.rstrip("/").split("/")
    return ["/".join(parts[:i]) + "/" if i else "" for i in range(len(parts))]


def read_marker(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING:
            return None
        raise
    with answer["Body"] as body:
        raw = bytes(body.read())
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    # An unreadable marker still says "someone claimed this": never treated as ours.
    return data if isinstance(data, dict) else {"storage_id": None, "unreadable": True}


def foreign_names(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Names directly under ``prefix`` that this SE's layout never writes."""
    found: list[str] = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    )
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            name = str(common["Prefix"])[len(prefix) :]
            if not OWN_FOLDER.match(name):
                found.append(name)
        for obj in page.get("Contents", []):
            name = str(obj["Key"])[len(prefix) :]
            if name != MARKER:
                found.append(name)
    return found


def _where(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix}" if prefix else f"bucket {bucket} (no SE_S3_PREFIX)"


def _refuse(message: str) -> BucketNotOurs:
    log.critical("refusing to start: %s", message)
    return BucketNotOurs(message)


def claim(s3: Any, bucket: str, prefix: str, storage_id: str) -> None:
    """Make ``prefix`` of ``bucket`` this SE's, or raise ``BucketNotOurs``. Blocking."""
    for above in ancestors(prefix):
        owner = read_marker(s3, bucket, above + MARKER)
        if owner is not None:
            raise _refuse(
                f"{_where(bucket, above)} belongs to storage element"
                f" {owner.get('storage_id')!r}, whose keys include {_where(bucket, prefix)};"
                " give each storage element its own SE_S3_PREFIX (none inside another)"
            )
    key = prefix + MARKER
    owner = read_marker(s3, bucket, key)
    if owner is not None:
        if owner.get("storage_id") == storage_id:
            return
        raise _refuse(
            f"{_where(bucket, prefix)} belongs to storage element {owner.get('storage_id')!r},"
            f" not {storage_id!r}; give each storage element its own SE_S3_PREFIX"
        )
    foreign = foreign_names(s3, bucket, prefix)
    if foreign:
        shown = ", ".join(sorted(foreign)[:5])
        raise _refuse(
            f"{_where(bucket, prefix)} holds objects that are not a storage element's"
            f" ({shown}): the bucket is shared; set SE_S3_PREFIX to a prefix of its own"
        )
    body = json.dumps(
        {"storage_id": storage_id, "prefix": prefix, "claimed_at": datetime.now(UTC).isoformat()}
    ).encode()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _UNSUPPORTED:
            s3.put_object(Bucket=bucket, Key=key, Body=body)  # no conditional writes here
        elif code not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            raise
    owner = read_marker(s3, bucket, key)
    if owner is None or owner.get("storage_id") != storage_id:
        raise _refuse(
            f"{_where(bucket, prefix)} was claimed at the same time by storage element"
            f" {None if owner is None else owner.get('storage_id')!r}"
        )
    log.info("claimed %s for storage element %s", _where(bucket, prefix), storage_id)
