"""attr.json (architecture §5.2): the one source of truth for a stored file's metadata."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from artstore.common.files import FileStatus, RetentionPolicy

ATTR_MAX_BYTES = 4096
SCHEMA_VERSION = 1
# Fields an attr may leave out (absent means None); see Attr.content.
OPTIONAL_FIELDS = ("finalized_by", "finalized_at", "previews", "bitrot")
# At most this many preview sizes per file: 8 entries take about 800 bytes of the 4 KiB.
MAX_PREVIEWS = 8
PREVIEW_MIN_SIZE = 16
PREVIEW_MAX_SIZE = 4096
PreviewFormat = Literal["webp", "jpeg"]


class BadAttr(Exception):
    """An attr file that cannot be trusted: unparsable, invalid or with a wrong checksum."""


class PreviewRef(BaseModel):
    """One preview sidecar the attr names (issue 16): its longest side, format, length
    and SHA-256 (hex; the sidecar's name carries its first 16 digits)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(ge=PREVIEW_MIN_SIZE, le=PREVIEW_MAX_SIZE)
    format: PreviewFormat
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class BitrotRef(BaseModel):
    """The blob's bit-rot hash (issue 19; ``storage_element/bitrot.py``): a fast
    non-cryptographic hash that whole-file downloads and the scrubber verify the bytes
    with instead of re-running SHA-256. The attr's own ``meta_checksum`` covers it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alg: Literal["xxh3-128"]
    hex: str = Field(pattern=r"^[0-9a-f]{32}$")


class Attr(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    file_id: str
    storage_path: str
    original_filename: str
    content_type: str
    size: int = Field(ge=0)
    checksum: str
    uploaded_by: str
    uploaded_at: datetime
    updated_at: datetime
    version: int = Field(ge=1)
    status: FileStatus
    retention_policy: RetentionPolicy
    ttl_days: int | None
    expires_at: datetime | None
    description: str
    tags: list[str]
    metadata: dict[str, str]
    # Set when a temporary file was made permanent (finalize keeps uploaded_by/_at).
    # Optional: an attr without them (any attr written before they existed) stays valid.
    finalized_by: str | None = None
    finalized_at: datetime | None = None
    # Preview sidecars (issue 16), sorted by size; None (left out of the file) when
    # there are none, so an attr that never had previews keeps its bytes and checksum.
    previews: list[PreviewRef] | None = Field(default=None, max_length=MAX_PREVIEWS)
    # The bit-rot hash of the blob (issue 19). None (left out of the file) in attrs
    # written before it existed: those verify with ``checksum`` (SHA-256).
    bitrot: BitrotRef | None = None
    meta_checksum: str = ""

    def preview_sizes(self) -> list[int]:
        """The sizes of the previews this copy has, sorted (the catalog's column)."""
        return sorted(p.size for p in self.previews or ())

    def preview(self, size: int) -> PreviewRef | None:
        return next((p for p in self.previews or () if p.size == size), None)

    def content(self) -> dict[str, Any]:
        """All fields but ``meta_checksum``, as JSON values. The optional fields are left
        out while unset, so an attr that never had them keeps its bytes and checksum."""
        data = self.model_dump(mode="json", exclude={"meta_checksum"})
        for name in OPTIONAL_FIELDS:
            if data[name] is None:
                del data[name]
        return data

    def sealed(self) -> Attr:
        """This attr with ``meta_checksum`` computed over the canonical JSON of the rest."""
        return self.model_copy(update={"meta_checksum": meta_checksum(self.content())})

    def encode(self) -> bytes:
        """The attr file's bytes (sealed). Compact and key-sorted: the limit is 4 KiB."""
        return self.seal()[1]

    def seal(self) -> tuple[Attr, bytes]:
        """The sealed attr and its file's bytes, the content dumped once for both."""
        content = self.content()
        checksum = meta_checksum(content)
        content["meta_checksum"] = checksum
        return self.model_copy(update={"meta_checksum": checksum}), canonical(content)


def canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def meta_checksum(content: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(content)).hexdigest()


def decode(raw: bytes) -> Attr:
    """Parse and verify an attr file; raise BadAttr when it cannot be trusted."""
    if len(raw) > ATTR_MAX_BYTES:
        raise BadAttr(f"attr is {len(raw)} bytes, over {ATTR_MAX_BYTES}")
    try:
        data = json.loads(raw)
        attr = Attr.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise BadAttr(f"attr does not parse: {exc}") from exc
    if attr.meta_checksum != meta_checksum(attr.content()):
        raise BadAttr("meta_checksum does not match")
    return attr
