"""tus 1.0 headers: what the protocol asks of every request and answer."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from email.utils import format_datetime

from artstore.common.errors import ArtStoreError, ValidationFailed
from artstore.common.text import check_tag, check_text, decode_utf8

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
OFFSET_TYPE = "application/offset+octet-stream"
# tus checksum algorithm → the RFC 9530 key the SE session takes (contracts.se). tus 1.0
# requires sha1; md5 is what some clients offer.
CHECKSUMS = {"sha1": "sha", "md5": "md5", "sha256": "sha-256"}
CHECKSUM_ALGORITHMS = ",".join(CHECKSUMS)
_DIGEST_SIZES = {"sha1": 20, "md5": 16, "sha256": 32}


class PreconditionFailed(ArtStoreError):
    status, code = 412, "UNSUPPORTED_VERSION"

    def __init__(self) -> None:
        super().__init__(
            f"Tus-Resumable must be {VERSION}",
            headers={"Tus-Version": VERSION, "Tus-Resumable": VERSION},
        )


class UnsupportedMediaType(ArtStoreError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"


class TusChecksumMismatch(ArtStoreError):
    """tus checksum extension: 460 when a chunk does not match its Upload-Checksum."""

    status, code = 460, "CHECKSUM_MISMATCH"


def upload_checksum(header: str | None) -> str | None:
    """``Upload-Checksum: <algorithm> <base64>`` as the SE's ``Content-Digest`` value
    (``sha=:<base64>:``), or None. An algorithm not offered is 400 (tus 1.0)."""
    if not header:
        return None
    algo, _, value = header.strip().partition(" ")
    algo = algo.lower()
    if algo not in CHECKSUMS:
        raise ValidationFailed(
            f"Upload-Checksum algorithm not supported (supported: {CHECKSUM_ALGORITHMS})",
            details={"algorithm": algo[:32]},
        )
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("Upload-Checksum is not base64") from None
    if len(digest) != _DIGEST_SIZES[algo]:
        raise ValidationFailed(f"Upload-Checksum has the wrong length for {algo}")
    return f"{CHECKSUMS[algo]}=:{base64.b64encode(digest).decode()}:"


def require_version(value: str | None) -> None:
    if value != VERSION:
        raise PreconditionFailed()


def int_header(value: str | None, name: str) -> int:
    if value is None or not value.strip().isdigit():
        raise ValidationFailed(f"{name} must be a non-negative integer", details={"header": name})
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """``Upload-Metadata: key base64,key2 base64`` (a key may have no value). Values are
    decoded strictly (base64, then UTF-8); what they hold is checked by the caller."""
    out: dict[str, str] = {}
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, encoded = item.partition(" ")
        # The header arrives as latin-1 text: a key is plain ASCII, or refused.
        check_text("Upload-Metadata", key, max_bytes=256)
        if not key.isascii():
            raise ValidationFailed(
                "Upload-Metadata keys are ASCII", details={"field": "Upload-Metadata"}
            )
        try:
            raw = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(
                f"Upload-Metadata value of {key!r} is not base64", details={"field": key}
            ) from None
        out[key] = decode_utf8(key, raw)
    return out


def tags_of(value: str) -> list[str]:
    """tags: a JSON array, or comma-separated; each a valid tag (artstore.common.text)."""
    if value.lstrip().startswith("["):
        try:
            data = json.loads(value)
        except ValueError:
            raise ValidationFailed("tags is not a JSON array", details={"field": "tags"}) from None
        if not isinstance(data, list):
            raise ValidationFailed("tags is not a JSON array", details={"field": "tags"})
        return [check_tag(t) for t in data]
    return [check_tag(t) for t in value.split(",") if t.strip()]


def http_date(at: datetime) -> str:
    return format_datetime(at, usegmt=True)
