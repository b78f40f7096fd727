"""attr.json sealing and verification; storage names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from artstore.storage_element.attr.model import ATTR_MAX_BYTES, Attr, BadAttr, decode
from artstore.storage_element.layout import (
    clean_original_filename,
    safe_relative,
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
    assert len(name) <= 200 and name.endswith("_12345678.txt")
    evil = storage_name("../../etc/passwd\x00", "../x", at, fid)
    assert "/" not in evil and ".." not in evil and "\x00" not in evil


def test_original_filename_is_cleaned() -> None:
    assert clean_original_filename("../../etc/passwd") == "passwd"
    assert clean_original_filename("C:\\Users\\a\\b.txt") == "b.txt"
    assert clean_original_filename("a\x00b\r\n.txt") == "ab.txt"
    assert clean_original_filename("..") == "file"


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../../b", "a//b", ""])
def test_unsafe_storage_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        safe_relative(bad)
