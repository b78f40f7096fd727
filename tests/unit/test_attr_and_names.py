"""attr.json sealing and verification; storage names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from artstore.common.errors import ValidationFailed
from artstore.storage_element.attr.model import ATTR_MAX_BYTES, Attr, BadAttr, decode
from artstore.storage_element.layout import (
    ATTR_SUFFIX,
    MAX_KEY_TAIL_BYTES,
    MAX_NAME_BYTES,
    MAX_S3_PREFIX_BYTES,
    NAME_MAX,
    QUARANTINE_SUFFIX_BYTES,
    clean_original_filename,
    cut_utf8,
    hour_folder,
    safe_relative,
    split_filename,
    storage_name,
)


def _attr(**kw: object) -> Attr:
    base: dict[str, object] = dict(
        file_id=str(uuid.uuid4()),
        storage_path="2026/01/01/00/x",
        original_filename="x",
        content_type="text/plain",
        size=1,
        checksum="sha256:" + "0" * 64,
        uploaded_by="u",
        uploaded_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        version=1,
        status="active",
        retention_policy="permanent",
        ttl_days=None,
        expires_at=None,
        description="é",
        tags=["a"],
        metadata={"k": "v"},
    )
    return Attr.model_validate({**base, **kw})


def test_encode_decode_round_trip() -> None:
    attr = _attr()
    raw = attr.encode()
    assert len(raw) < ATTR_MAX_BYTES
    back = decode(raw)
    assert back.meta_checksum.startswith("sha256:")
    assert back.model_dump(exclude={"meta_checksum"}) == attr.model_dump(exclude={"meta_checksum"})


def test_tampered_attr_is_refused() -> None:
    raw = _attr().encode().replace(b'"size":1', b'"size":2')
    with pytest.raises(BadAttr, match="meta_checksum"):
        decode(raw)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"file_id": 1}', b"x" * (ATTR_MAX_BYTES + 1)])
def test_unparsable_attr_is_refused(raw: bytes) -> None:
    with pytest.raises(BadAttr):
        decode(raw)


def test_storage_name_shape_and_safety() -> None:
    fid = uuid.UUID("12345678-1234-4234-8234-123456789abc")
    at = datetime(2026, 11, 22, 3, 4, 5, tzinfo=UTC)
    assert storage_name("Отчёт 2026.PDF", "bob@example.com", at, fid) == (
        "Отчёт_2026_bob_example_com_20261122T030405_12345678.PDF"
    )
    assert storage_name(".bashrc", "u", at, fid).startswith("bashrc_u_")
    assert storage_name("...", "", at, fid) == "file_anonymous_20261122T030405_12345678"
    name = storage_name("a" * 500 + ".txt", "u" * 300, at, fid)
    assert len(name.encode()) <= MAX_NAME_BYTES and name.endswith("_12345678.txt")
    evil = storage_name("../../etc/passwd\x00", "../x", at, fid)
    assert "/" not in evil and ".." not in evil and "\x00" not in evil


@pytest.mark.parametrize("script", ["ж", "中", "😀", "é", "a"])
@pytest.mark.parametrize("ext", ["", ".txt", "." + "ж" * 30])
def test_storage_name_fits_in_bytes(script: str, ext: str) -> None:
    """Names are cut on character boundaries to MAX_NAME_BYTES, so that the blob, its attr
    and their quarantined copies fit a 255-byte path component (item 1 of issue 11)."""
    fid = uuid.uuid4()
    at = datetime(2026, 11, 22, 3, 4, 5, tzinfo=UTC)
    for n in (1, 60, 129, 255, 1000):
        name = storage_name(script * n + ext, script * n, at, fid)
        size = len(name.encode())  # would raise had a character been split
        assert size <= MAX_NAME_BYTES, (n, size)
        assert name.endswith(fid.hex[:8] + split_filename("x" + ext)[1])
        assert size + QUARANTINE_SUFFIX_BYTES <= NAME_MAX
        assert len(name.encode() + ATTR_SUFFIX.encode()) <= NAME_MAX


def test_s3_key_budget() -> None:
    """The longest key an SE writes below its prefix, and what is left for the prefix."""
    at = datetime(2026, 11, 22, 3, 4, 5, tzinfo=UTC)
    name = storage_name("😀" * 255, "😀" * 255, at, uuid.uuid4())
    key = f"quarantine/{hour_folder(at)}/{name}.20261122T030405123456{ATTR_SUFFIX}"
    assert len(key.encode()) <= MAX_KEY_TAIL_BYTES
    assert MAX_S3_PREFIX_BYTES + MAX_KEY_TAIL_BYTES == 1024 and MAX_S3_PREFIX_BYTES >= 700


def test_cut_utf8_never_splits_a_character() -> None:
    assert cut_utf8("жжж", 5) == "жж"
    assert cut_utf8("😀a", 3) == ""
    assert cut_utf8("abc", 10) == "abc"


def test_original_filename_is_kept_whole_or_refused() -> None:
    assert clean_original_filename("../../etc/passwd") == "passwd"
    assert clean_original_filename("C:\\Users\\a\\b.txt") == "b.txt"
    assert clean_original_filename("..") == "file"
    name = "中" * 255
    assert clean_original_filename(name) == name  # 765 bytes: kept, not cut at 255
    for bad in ("a\x00b.txt", "a\r\n.txt", "\x1b[31mred.txt", "\ud800.txt", "x" * 1025):
        with pytest.raises(ValidationFailed) as exc:
            clean_original_filename(bad)
        assert exc.value.details is not None and exc.value.details["field"] == "filename"


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../../b", "a//b", ""])
def test_unsafe_storage_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        safe_relative(bad)
