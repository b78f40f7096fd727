"""Checksums a client announces: RFC 9530 ``Content-Digest`` or ``X-Checksum-SHA256``
(the same two headers the SE accepts). tus ``Upload-Checksum`` is tus/protocol.py's."""

from __future__ import annotations

import base64
import binascii
import re

from artstore.common.errors import ValidationFailed
from artstore.contracts.se import CHECKSUM_HEADER, CONTENT_DIGEST_HEADER

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _b64_sha256(value: str, what: str) -> str:
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(f"{what} is not base64") from None
    if len(digest) != 32:
        raise ValidationFailed(f"{what} has the wrong length for SHA-256")
    return digest.hex()


def announced_sha256(content_digest: str | None, x_checksum: str | None) -> str | None:
    """The hex SHA-256 the client announced, or None."""
    if x_checksum:
        if not _HEX64.match(x_checksum.strip()):
            raise ValidationFailed(f"{CHECKSUM_HEADER} must be 64 hex digits")
        return x_checksum.strip().lower()
    for item in (content_digest or "").split(","):
        algo, _, value = item.strip().partition("=")
        if algo.strip().lower() != "sha-256":
            continue
        value = value.strip()
        if not (len(value) > 2 and value.startswith(":") and value.endswith(":")):
            raise ValidationFailed(f"{CONTENT_DIGEST_HEADER} sha-256 must be :base64:")
        return _b64_sha256(value[1:-1], f"{CONTENT_DIGEST_HEADER} sha-256")
    return None
