"""Where things live in an SE's data directory (architecture §5.1) and how blobs are named."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from artstore.common.text import check_filename

ATTR_SUFFIX = ".attr.json"
# Names are limited in BYTES (a filesystem allows 255 bytes per path component, S3
# 1024 bytes per key). The longest component derived from a storage name is its
# quarantined attr: ``{name}.{YYYYmmddTHHMMSSffffff}.attr.json`` = name + 32 bytes, so
# a name may take 223 bytes; 200 leaves room for one more suffix.
MAX_NAME_BYTES = 200
MAX_EXT_BYTES = 16
QUARANTINE_SUFFIX_BYTES = len(".20260101T000000000000") + len(ATTR_SUFFIX)
NAME_MAX = 255  # bytes per path component (ext4, xfs, btrfs...)
# The longest key below an S3 prefix: quarantine/ + YYYY/MM/DD/HH/ + name + suffix.
_HOUR_FOLDER_BYTES = len("2026/01/01/00/")
MAX_KEY_TAIL_BYTES = (
    len("quarantine/") + _HOUR_FOLDER_BYTES + MAX_NAME_BYTES + QUARANTINE_SUFFIX_BYTES
)
S3_KEY_MAX = 1024
# SE_S3_PREFIX may take what is left of S3's key limit.
MAX_S3_PREFIX_BYTES = S3_KEY_MAX - MAX_KEY_TAIL_BYTES


# Preview sidecars (issue 16): ``<storage path>.preview-<size>-<sha16>.<ext>`` next to the
# blob. A storage name holds at most one dot (``storage_name`` reduces every other one),
# so the mark cannot occur in a blob's own name. The SHA-256 prefix makes every write a
# new name: a preview named by the attr is never overwritten in place (a crash before
# the attr's commit point leaves the named one intact and an unnamed one to remove).
# Longest: 200 + len(".preview-4096-") + 16 + len(".webp") = 235 bytes < NAME_MAX.
PREVIEW_MARK = ".preview-"
PREVIEW_EXT = {"webp": "webp", "jpeg": "jpg"}
_PREVIEW_NAME = re.compile(r"\.preview-([0-9]{1,4})-([0-9a-f]{16})\.(webp|jpg)$")


def preview_path(storage_path: str, size: int, fmt: str, sha256_hex: str) -> str:
    """The sidecar of ``storage_path``'s preview of longest side ``size``."""
    return f"{storage_path}{PREVIEW_MARK}{size}-{sha256_hex[:16]}.{PREVIEW_EXT[fmt]}"


def preview_owner(relative: str) -> tuple[str, int] | None:
    """(storage path, size) of a preview sidecar's relative path; None for anything else."""
    m = _PREVIEW_NAME.search(relative)
    if m is None:
        return None
    return relative[: m.start()], int(m.group(1))


@dataclass(frozen=True)
class Layout:
    data_dir: Path
    wal_dir: Path

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def mode_file(self) -> Path:
        return self.data_dir / "mode.json"

    def blob_path(self, storage_path: str) -> Path:
        return self.files_dir / safe_relative(storage_path)

    def attr_path(self, storage_path: str) -> Path:
        return self.files_dir / (safe_relative(storage_path) + ATTR_SUFFIX)


def safe_relative(storage_path: str) -> str:
    """Refuse anything that could step outside ``files/`` (storage paths come from attrs)."""
    p = PurePosixPath(storage_path)
    if (
        str(p) != storage_path
        or p.is_absolute()
        or any(part in ("", ".", "..") for part in p.parts)
    ):
        raise ValueError(f"unsafe storage path {storage_path!r}")
    return str(p)


def hour_folder(at: datetime) -> str:
    return at.strftime("%Y/%m/%d/%H")


def _reduce(text: str) -> str:
    """Letters of any script, digits, '-' and '_'; everything else becomes '_'."""
    text = unicodedata.normalize("NFC", text)
    out = "".join(ch if (ch.isalnum() or ch in "-_") else "_" for ch in text)
    return re.sub(r"_+", "_", out).strip("_")


def cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that is at most ``max_bytes`` in UTF-8, never
    splitting a character."""
    if len(text) * 4 <= max_bytes:
        return text
    return text.encode()[:max_bytes].decode("utf-8", "ignore")


def _nbytes(text: str) -> int:
    return len(text.encode())


def split_filename(filename: str) -> tuple[str, str]:
    """(stem, extension with dot) of the last path component, both reduced to safe text;
    the extension is at most ``MAX_EXT_BYTES``."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    ext = cut_utf8(_reduce(ext), MAX_EXT_BYTES)
    return _reduce(stem), (f".{ext}" if ext else "")


def clean_original_filename(filename: str, field: str = "filename") -> str:
    """The name kept in metadata: the last path component, whole. Control characters,
    invalid text and names over ``FILENAME_MAX_BYTES`` are refused (400 naming
    ``field``), never stripped or cut (see artstore.common.text)."""
    return check_filename(field, filename)


def storage_name(filename: str, user: str, at: datetime, file_id: uuid.UUID) -> str:
    """``{stem}_{user}_{YYYYMMDDTHHMMSS}_{uuid8}{.ext}``, at most ``MAX_NAME_BYTES``
    UTF-8 bytes, each part shortened on character boundaries."""
    stem, ext = split_filename(filename)
    stem = stem or "file"
    user_part = _reduce(user) or "anonymous"
    tail = f"_{at.strftime('%Y%m%dT%H%M%S')}_{file_id.hex[:8]}{ext}"
    room = MAX_NAME_BYTES - _nbytes(tail) - 1  # - 1: the '_' between stem and user
    user_part = cut_utf8(user_part, max(8, room // 3))
    stem = cut_utf8(stem, room - _nbytes(user_part)) or "file"
    return f"{stem}_{user_part}{tail}"
