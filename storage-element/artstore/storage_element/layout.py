"""Where things live in an SE's data directory (DESIGN §5.1) and how blobs are named."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

ATTR_SUFFIX = ".attr.json"
MAX_NAME = 200


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


def split_filename(filename: str) -> tuple[str, str]:
    """(stem, extension with dot) of the last path component, both reduced to safe text."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    ext = _reduce(ext)[:16]
    return _reduce(stem), (f".{ext}" if ext else "")


def clean_original_filename(filename: str) -> str:
    """The name kept in metadata: last path component, no control characters."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if base in ("", ".", ".."):
        return "file"
    return base[:255]


def storage_name(filename: str, user: str, at: datetime, file_id: uuid.UUID) -> str:
    """``{stem}_{user}_{YYYYMMDDTHHMMSS}_{uuid8}{.ext}``, at most 200 characters."""
    stem, ext = split_filename(filename)
    stem = stem or "file"
    user_part = _reduce(user) or "anonymous"
    tail = f"_{at.strftime('%Y%m%dT%H%M%S')}_{file_id.hex[:8]}{ext}"
    room = MAX_NAME - len(tail) - 1
    user_part = user_part[: max(8, room // 3)]
    stem = stem[: max(1, room - len(user_part))]
    return f"{stem}_{user_part}{tail}"[:MAX_NAME]
