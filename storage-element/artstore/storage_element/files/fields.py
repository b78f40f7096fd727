"""Upload fields, from a multipart form or a query string, validated in one place."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass, field

from artstore.common.errors import AttrTooLarge, ValidationFailed

# Each tag takes at least 4 bytes of the attr ("a",): more can never fit in 4096 bytes.
MAX_TAGS = 1024
MAX_TAG_CHARS = 128
MAX_FIELD_CHARS = 8192
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass
class UploadFields:
    filename: str | None = None
    description: str = ""
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    retention_policy: str | None = None
    ttl_days: int | None = None
    file_id: str | None = None

    def apply(self, name: str, value: str) -> None:
        """Take one form/query field; unknown names are ignored like any HTML form."""
        if len(value) > MAX_FIELD_CHARS:
            if name == "description":  # kept verbatim in the attr, which it cannot fit
                raise AttrTooLarge("description is too long", details={"field": name})
            raise ValidationFailed(f"field {name} is too long", details={"field": name})
        if name == "filename":
            self.filename = value
        elif name == "description":
            self.description = value
        elif name == "tags":
            self.tags.extend(_parse_tags(value))
            if len(self.tags) > MAX_TAGS:
                raise AttrTooLarge(f"more than {MAX_TAGS} tags", details={"field": "tags"})
        elif name == "metadata":
            self.metadata.update(_parse_metadata(value))
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


def _parse_tags(value: str) -> list[str]:
    """A tag, or a JSON array of tags."""
    raw: object = value
    if value.lstrip().startswith("["):
        try:
            raw = json.loads(value)
        except ValueError:
            raise ValidationFailed(
                "tags is not a valid JSON array", details={"field": "tags"}
            ) from None
    items = raw if isinstance(raw, list) else [raw]
    tags = []
    for item in items:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_TAG_CHARS:
            raise ValidationFailed(
                f"each tag must be a non-empty string of at most {MAX_TAG_CHARS} characters",
                details={"field": "tags"},
            )
        tags.append(item.strip())
    return tags


def _parse_metadata(value: str) -> dict[str, str]:
    try:
        data = json.loads(value)
    except ValueError:
        raise ValidationFailed(
            "metadata is not valid JSON", details={"field": "metadata"}
        ) from None
    return validate_metadata(data)


def validate_metadata(data: object) -> dict[str, str]:
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in data.items()
    ):
        raise ValidationFailed(
            "metadata must be a flat JSON object of strings", details={"field": "metadata"}
        )
    return dict(data)


def expected_checksum(content_digest: str | None, x_checksum: str | None) -> str | None:
    """The hex SHA-256 a client announced (RFC 9530 Content-Digest or X-Checksum-SHA256)."""
    if x_checksum:
        if not _HEX64.match(x_checksum.strip()):
            raise ValidationFailed("X-Checksum-SHA256 must be 64 hex digits")
        return x_checksum.strip().lower()
    if content_digest:
        for item in content_digest.split(","):
            algo, _, value = item.strip().partition("=")
            if algo.strip().lower() != "sha-256":
                continue
            value = value.strip()
            if not (value.startswith(":") and value.endswith(":")):
                raise ValidationFailed("Content-Digest sha-256 must be :base64:")
            try:
                digest = base64.b64decode(value[1:-1], validate=True)
            except (binascii.Error, ValueError):
                raise ValidationFailed("Content-Digest sha-256 is not base64") from None
            if len(digest) != 32:
                raise ValidationFailed("Content-Digest sha-256 has the wrong length")
            return digest.hex()
    return None
