"""attr.row.decode_row: decode's verdict and values, cheaper (rebuild-index, issue 7)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from artstore.storage_element.attr import row as attr_row
from artstore.storage_element.attr.model import ATTR_MAX_BYTES, Attr, BadAttr, canonical, decode
from artstore.storage_element.attr.row import ROW_COLUMNS, decode_row, row_of
from artstore.storage_element.catalog.models import ATTR_COLUMNS


def _content(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schema_version": 1,
        "file_id": str(uuid.UUID(int=7, version=4)),
        "storage_path": "2026/01/01/00/x_u_20260101T000000_00000000.txt",
        "original_filename": 'Отчёт "q3".txt',
        "content_type": "text/plain",
        "size": 12,
        "checksum": "sha256:" + "0" * 64,
        "uploaded_by": "u",
        "uploaded_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00.250000Z",
        "version": 2,
        "status": "active",
        "retention_policy": "temporary",
        "ttl_days": 30,
        "expires_at": "2026-01-31T00:00:00Z",
        "description": "é \\ \n\t",
        "tags": ["a", "b c"],
        "metadata": {"k": "v", "ключ": "значение"},
    }
    base.update(kw)
    return base


def _sealed(content: dict[str, Any], drop: tuple[str, ...] = ()) -> bytes:
    """The bytes of an attr whose meta_checksum is right for exactly these JSON values
    (as a careless writer would compute it, not as Attr.encode would)."""
    data = {k: v for k, v in content.items() if k not in drop}
    data["meta_checksum"] = "sha256:" + hashlib.sha256(canonical(data)).hexdigest()
    return canonical(data)


def _verdict(raw: bytes) -> tuple[str, Any]:
    try:
        return "ok", row_of(decode(raw))
    except BadAttr:
        return "bad", None


def _rows_equal(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(x == y for x, y in zip(a, b, strict=True))


def test_columns_and_encoder_agree_with_the_model() -> None:
    assert ROW_COLUMNS == ATTR_COLUMNS  # the catalog's attr columns, same order
    data = _content()
    assert attr_row._canonical(data).encode() == canonical(data)


GOOD = {
    "plain": _content(),
    "permanent, no expiry": _content(retention_policy="permanent", ttl_days=None, expires_at=None),
    "empty tags and metadata": _content(tags=[], metadata={}, description=""),
    "microseconds": _content(uploaded_at="2026-01-01T00:00:00.000001Z"),
    "big size": _content(size=2**62),
    "schema 2": _content(schema_version=2),
    "bit-rot hash": _content(bitrot={"alg": "xxh3-128", "hex": "0123456789abcdef" * 2}),
}


@pytest.mark.parametrize("name", GOOD)
def test_good_attrs_give_decodes_row(name: str) -> None:
    raw = _sealed(GOOD[name])
    verdict, expected = _verdict(raw)
    assert verdict == "ok"
    assert _rows_equal(decode_row(raw), expected)
    assert attr_row._fast(raw) is not None  # taken by the cheap path


def test_attrs_written_by_the_model_take_the_cheap_path() -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    attr = Attr.model_validate({**_content(), "uploaded_at": at, "updated_at": at,
                                "expires_at": at + timedelta(days=30)})  # fmt: skip
    raw = attr.encode()
    assert attr_row._fast(raw) is not None
    assert _rows_equal(decode_row(raw), row_of(decode(raw)))


# Each is sealed with a checksum over its own JSON values, so only the model decides.
ODD = {
    "time with +00:00": _content(uploaded_at="2026-01-01T00:00:00+00:00"),
    "time in another zone": _content(uploaded_at="2026-01-01T02:00:00+02:00"),
    "time with zero fraction": _content(uploaded_at="2026-01-01T00:00:00.000000Z"),
    "time with short fraction": _content(uploaded_at="2026-01-01T00:00:00.5Z"),
    "naive time": _content(uploaded_at="2026-01-01T00:00:00"),
    "time with space": _content(uploaded_at="2026-01-01 00:00:00Z"),
    "time as number": _content(uploaded_at=1767225600),
    "bad date": _content(uploaded_at="2026-02-30T00:00:00Z"),
    "hour 24": _content(uploaded_at="2026-01-01T24:00:00Z"),
    "non-ascii digits": _content(uploaded_at="٢٠٢٦-01-01T00:00:00Z"),
    "size as string": _content(size="12"),
    "size as float": _content(size=12.0),
    "size negative": _content(size=-1),
    "size true": _content(size=True),
    "version 0": _content(version=0),
    "ttl as string": _content(ttl_days="30"),
    "schema as bool": _content(schema_version=True),
    "status unknown": _content(status="gone"),
    "status as list": _content(status=["active"]),
    "retention as dict": _content(retention_policy={"a": 1}),
    "tag not a string": _content(tags=["a", 1]),
    "tags a string": _content(tags="a"),
    "metadata value a number": _content(metadata={"k": 1}),
    "metadata a list": _content(metadata=[["k", "v"]]),
    "file id a number": _content(file_id=7),
    "description null": _content(description=None),
    "extra field": _content(extra="x"),
    "bitrot null": _content(bitrot=None),
    "bitrot a string": _content(bitrot="xxh3-128:00"),
    "bitrot unknown alg": _content(bitrot={"alg": "md5", "hex": "0" * 32}),
    "bitrot short hex": _content(bitrot={"alg": "xxh3-128", "hex": "0" * 31}),
    "bitrot upper hex": _content(bitrot={"alg": "xxh3-128", "hex": "A" * 32}),
    "bitrot extra key": _content(bitrot={"alg": "xxh3-128", "hex": "0" * 32, "x": 1}),
    "bitrot hex a number": _content(bitrot={"alg": "xxh3-128", "hex": 0}),
}


@pytest.mark.parametrize("name", ODD)
def test_other_attrs_get_decodes_verdict(name: str) -> None:
    raw = _sealed(ODD[name])
    verdict, expected = _verdict(raw)
    if verdict == "bad":
        with pytest.raises(BadAttr):
            decode_row(raw)
    else:
        assert _rows_equal(decode_row(raw), expected)
    assert attr_row._fast(raw) is None  # none of these is provably decode's own form


def test_missing_defaulted_fields_get_decodes_verdict() -> None:
    for drop in (("schema_version",), ("ttl_days",)):
        raw = _sealed(_content(), drop)
        verdict, expected = _verdict(raw)
        if verdict == "bad":
            with pytest.raises(BadAttr):
                decode_row(raw)
        else:
            assert _rows_equal(decode_row(raw), expected)
    # Without meta_checksum at all: decode hashes with the default "", and so does this.
    data = _content()
    raw = canonical(data)
    with pytest.raises(BadAttr):
        decode(raw)
    with pytest.raises(BadAttr):
        decode_row(raw)


def test_tampered_attr_is_refused() -> None:
    raw = _sealed(_content()).replace(b'"size":12', b'"size":13')
    with pytest.raises(BadAttr, match="meta_checksum"):
        decode_row(raw)


def test_tampered_bitrot_hash_is_refused() -> None:
    """The bit-rot hash (issue 19) is covered by meta_checksum like every other field."""
    raw = _sealed(_content(bitrot={"alg": "xxh3-128", "hex": "0" * 32}))
    tampered = raw.replace(b'"hex":"' + b"0" * 32, b'"hex":"' + b"1" + b"0" * 31)
    assert tampered != raw
    for read in (decode, decode_row):
        with pytest.raises(BadAttr, match="meta_checksum"):
            read(tampered)
    # Dropping the field (to fall back on SHA-256) breaks the checksum just as well.
    dropped = raw.replace(b'"bitrot":{"alg":"xxh3-128","hex":"' + b"0" * 32 + b'"},', b"")
    assert dropped != raw
    for read in (decode, decode_row):
        with pytest.raises(BadAttr, match="meta_checksum"):
            read(dropped)


def test_bitrot_hash_is_no_catalog_column() -> None:
    raw = _sealed(_content(bitrot={"alg": "xxh3-128", "hex": "0" * 32}))
    assert decode(raw).bitrot is not None
    assert "bitrot" not in ROW_COLUMNS
    # The same row as without it, but for the attr's own checksum (the last column).
    assert ROW_COLUMNS[-1] == "meta_checksum"
    assert _rows_equal(decode_row(raw)[:-1], decode_row(_sealed(_content()))[:-1])


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b"null", b'{"file_id": 1}', b"\xff\xfe", b"[" * 100_000,
     b"x" * (ATTR_MAX_BYTES + 1)],
)  # fmt: skip
def test_unparsable_attr_is_refused(raw: bytes) -> None:
    with pytest.raises(BadAttr):
        decode_row(raw)


def test_unencodable_text_is_a_bad_attr() -> None:
    """decode fails with UnicodeEncodeError on a lone surrogate; here it is a BadAttr."""
    text = json.dumps(_content()).replace('"u"', '"\\ud800"')
    with pytest.raises(UnicodeEncodeError):
        decode(text.encode())
    with pytest.raises(BadAttr):
        decode_row(text.encode())


def test_deeply_nested_json_is_a_bad_attr() -> None:
    """decode fails with RecursionError on 2,000 nested lists (4 KB); here: BadAttr."""
    raw = b"[" * 2000 + b"]" * 2000
    with pytest.raises(RecursionError):
        decode(raw)
    with pytest.raises(BadAttr):
        decode_row(raw)


def test_row_values_are_catalog_values() -> None:
    row = dict(zip(ROW_COLUMNS, decode_row(_sealed(_content())), strict=True))
    assert row["uploaded_at"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert row["updated_at"] == datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)
    assert row["uploaded_at"].utcoffset() == timedelta(0)
    assert json.loads(row["metadata"]) == {"k": "v", "ключ": "значение"}
    assert row["tags"] == ["a", "b c"] and row["version"] == 2


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("description", "a\x00b", "nul_character"),
        ("original_filename", "\x00", "nul_character"),
        ("tags", ["ok", "t\x00"], "nul_character"),
        ("metadata", {"k": "v\x00"}, "nul_character"),
        ("metadata", {"\x00k": "v"}, "nul_character"),
        ("description", "x\ud800", "unencodable_text"),
        ("tags", ["\udfff"], "unencodable_text"),
        ("metadata", {"k": "\ud800"}, "unencodable_text"),
    ],
)
def test_unstorable_names_text_postgres_refuses(field: str, value: Any, reason: str) -> None:
    attr = Attr.model_validate({**_content(), field: value})
    assert attr_row.unstorable(row_of(attr)) == reason


@pytest.mark.parametrize(
    "metadata",
    [
        {"k": "\\u0000"},  # a backslash and "u0000": text, not a NUL
        {"k": "\\\\u0000", "é": "\t\n\x01"},  # other control characters are fine
        {},
    ],
)
def test_unstorable_passes_text_postgres_takes(metadata: dict[str, str]) -> None:
    attr = Attr.model_validate({**_content(), "metadata": metadata, "description": "é\t\n"})
    assert attr_row.unstorable(row_of(attr)) is None
