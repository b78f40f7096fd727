"""Upload fields, from a multipart form or a query string, validated in one place."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass, field

from artstore.common.errors import AttrTooLarge, ValidationFailed
from artstore.common.text import (
    MAX_TAGS,
    check_description,
    check_filename,
    parse_metadata,
    parse_tags,
)
from artstore.contracts.se import CHECKSUM_HEADER, CONTENT_DIGEST_HEADER

# A form/query field longer than this is refused before it is parsed (a metadata JSON
# or a tags array within it is then checked item by item).
MAX_FIELD_BYTES = 8192
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass
class UploadFields:
    """Text fields are checked by the one text policy (artstore.common.text) as they
    arrive: invalid text is a 400 naming the field before any byte is stored."""

    filename: str | None = None
    description: str = ""
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    retention_policy: str | None = None
    ttl_days: int | None = None
    file_id: str | None = None

    def apply(self, name: str, value: str) -> None:
        """Take one form/query field; unknown names are ignored like any HTML form."""
        if len(value) > MAX_FIELD_BYTES or len(value.encode("utf-8", "replace")) > MAX_FIELD_BYTES:
            if name in ("description", "metadata"):  # kept verbatim in the attr: cannot fit
                raise AttrTooLarge(f"{name} is too long", details={"field": name})
            raise ValidationFailed(f"field {name} is too long", details={"field": name})
        if name == "filename":
            self.filename = check_filename(name, value)
        elif name == "description":
            self.description = check_description(value)
        elif name == "tags":
            self.tags.extend(parse_tags(value))
            if len(self.tags) > MAX_TAGS:
                raise AttrTooLarge(f"more than {MAX_TAGS} tags", details={"field": "tags"})
        elif name == "metadata":
            self.metadata.update(parse_metadata(value))
        elif name == "retention_policy":
            if value not in ("temporary", "permanent"):
                raise ValidationFailed(
                    "retention_policy must be temporary or permanent",
                    details={"field": "retention_policy"},
                )
            self.retention_policy = value
        elif name == "ttl_days":
            try:
                ttl = int(value)
            except ValueError:
                raise ValidationFailed(
                    "ttl_days must be an integer", details={"field": "ttl_days"}
                ) from None
            if not 1 <= ttl <= 3650:
                raise ValidationFailed("ttl_days must be 1..3650", details={"field": "ttl_days"})
            self.ttl_days = ttl
        elif name == "file_id":
            try:
                self.file_id = str(uuid.UUID(value))
            except ValueError:
                raise ValidationFailed(
                    "file_id must be a UUID", details={"field": "file_id"}
                ) from None


def expected_checksum(content_digest: str | None, x_checksum: str | None) -> str | None:
    """The hex SHA-256 a client announced (RFC 9530 Content-Digest or X-Checksum-SHA256)."""
    if x_checksum:
        if not _HEX64.match(x_checksum.strip()):
            raise ValidationFailed(f"{CHECKSUM_HEADER} must be 64 hex digits")
        return x_checksum.strip().lower()
    if content_digest:
        for item in content_digest.split(","):
            algo, _, value = item.strip().partition("=")
            if algo.strip().lower() != "sha-256":
                continue
            value = value.strip()
            if not (value.startswith(":") and value.endswith(":")):
                raise ValidationFailed(f"{CONTENT_DIGEST_HEADER} sha-256 must be :base64:")
            try:
                digest = base64.b64decode(value[1:-1], validate=True)
            except (binascii.Error, ValueError):
                raise ValidationFailed(f"{CONTENT_DIGEST_HEADER} sha-256 is not base64") from None
            if len(digest) != 32:
                raise ValidationFailed(f"{CONTENT_DIGEST_HEADER} sha-256 has the wrong length")
            return digest.hex()
    return None
