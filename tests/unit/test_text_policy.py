"""The one text policy (artstore.common.text): valid text or a 400 naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artstore.common import text
from artstore.common.errors import ArtStoreError, AttrTooLarge, ValidationFailed
from artstore.common.text import (
    check_description,
    check_filename,
    check_media_type,
    check_metadata,
    check_tag,
    check_text,
    decode_query,
    parse_metadata,
    parse_tags,
)
from artstore.storage_element.attr.model import ATTR_MAX_BYTES

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Every kind of bad character the policy must refuse, with a name for the test id.
BAD_CHARS = {
    "nul": "\x00",
    "c0": "\x01",
    "esc": "\x1b",
    "del": "\x7f",
    "c1": "\x85",
    "c1_last": "\x9f",
    "cr": "\r",
    "lf": "\n",
    "crlf": "\r\n",
    "tab": "\t",
    "lone_high_surrogate": "\ud800",
    "lone_low_surrogate": "\udfff",
}


def _refused(exc: pytest.ExceptionInfo[ArtStoreError], field: str) -> None:
    assert exc.value.status == 400 and exc.value.code == "VALIDATION_ERROR"
    assert exc.value.details is not None and exc.value.details["field"] == field


def _is_storable(value: str) -> None:
    """What PostgreSQL text/jsonb and an attr need: UTF-8 encodable, no NUL."""
    value.encode("utf-8")  # raises on any surrogate
    assert "\x00" not in value
    assert "\\u0000" not in json.dumps(value)


# -- check_text ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(BAD_CHARS))
def test_single_line_text_refuses_every_control_and_surrogate(kind: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_text("tags", f"a{BAD_CHARS[kind]}b", max_bytes=100)
    _refused(exc, "tags")


@pytest.mark.parametrize("kind", sorted(set(BAD_CHARS) - {"tab", "lf", "crlf"}))
def test_description_allows_tab_and_newlines_only(kind: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_description(f"a{BAD_CHARS[kind]}b")
    _refused(exc, "description")


def test_description_keeps_tabs_and_line_breaks() -> None:
    value = "line 1\r\nline 2\n\tindented"
    assert check_description(value) == value


def test_limits_are_bytes_not_characters() -> None:
    assert check_text("f", "ж" * 50, max_bytes=100) == "ж" * 50
    with pytest.raises(ValidationFailed) as exc:
        check_text("f", "ж" * 51, max_bytes=100)
    _refused(exc, "f")
    assert exc.value.details == {"field": "f", "max_bytes": 100}
    assert check_text("f", "😀" * 25, max_bytes=100)
    with pytest.raises(ValidationFailed):
        check_text("f", "😀" * 25 + "a", max_bytes=100)


def test_free_text_over_the_attr_is_413() -> None:
    assert text.ATTR_BUDGET == ATTR_MAX_BYTES  # the lib's copy of the SE's limit
    check_description("d" * text.DESCRIPTION_MAX_BYTES)
    with pytest.raises(AttrTooLarge):
        check_description("d" * (text.DESCRIPTION_MAX_BYTES + 1))
    with pytest.raises(AttrTooLarge):
        check_metadata({"k": "é" * (text.METADATA_VALUE_MAX_BYTES // 2 + 1)})


@SETTINGS
@given(st.text())
def test_any_accepted_text_is_storable(value: str) -> None:
    for multiline in (False, True):
        try:
            accepted = check_text("f", value, max_bytes=10_000, multiline=multiline)
        except ValidationFailed:
            continue
        _is_storable(accepted)
        assert len(accepted.encode()) <= 10_000


@SETTINGS
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))))
def test_text_without_controls_is_accepted(value: str) -> None:
    assert check_text("f", value, max_bytes=len(value.encode())) == value


# -- decoding --------------------------------------------------------------------------------
def test_query_string_is_decoded_strictly() -> None:
    assert decode_query(b"filename=%D0%B6.txt&tags=a&tags=b+c&empty=&flag") == [
        ("filename", "ж.txt"),
        ("tags", "a"),
        ("tags", "b c"),
        ("empty", ""),
        ("flag", ""),
    ]
    # U+FFFD sent as such is valid text; a byte that is not UTF-8 is refused by name.
    assert decode_query(b"description=%EF%BF%BD") == [("description", "\ufffd")]
    for raw in (b"description=a%FFb", b"description=%C3", b"description=\xff"):
        with pytest.raises(ValidationFailed) as exc:
            decode_query(raw)
        _refused(exc, "description")


@SETTINGS
@given(st.binary(max_size=200))
def test_any_decoded_query_is_valid_utf8(raw: bytes) -> None:
    try:
        pairs = decode_query(raw)
    except ValidationFailed:
        return
    for name, value in pairs:
        name.encode()
        value.encode()


# -- file names ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\a\\b.txt", "b.txt"),
        ("  spaced.txt  ", "spaced.txt"),
        ("..", "file"),
        ("dir/", "file"),
        ("", "file"),
        ("Отчёт 2026.PDF", "Отчёт 2026.PDF"),
    ],
)
def test_filename_keeps_the_last_component(sent: str, kept: str) -> None:
    assert check_filename("filename", sent) == kept


@pytest.mark.parametrize("script", ["ж", "中", "😀"])
def test_255_character_names_are_kept_whole(script: str) -> None:
    name = script * 251 + ".txt"
    assert check_filename("filename", name) == name


def test_filename_over_the_byte_limit_is_refused_not_cut() -> None:
    limit = text.FILENAME_MAX_BYTES
    assert check_filename("filename", "a" * limit) == "a" * limit
    with pytest.raises(ValidationFailed) as exc:
        check_filename("filename", "😀" * (limit // 4) + "a")
    _refused(exc, "filename")


@pytest.mark.parametrize("kind", sorted(BAD_CHARS))
def test_filename_with_a_control_is_refused_not_stripped(kind: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_filename("filename", f"a{BAD_CHARS[kind]}b.txt")
    _refused(exc, "filename")


# -- tags and metadata -----------------------------------------------------------------------
def test_tags_and_metadata() -> None:
    assert parse_tags(" one ") == ["one"]
    assert parse_tags('["a", " b "]') == ["a", "b"]
    assert check_tag("x" * text.TAG_MAX_BYTES) == "x" * text.TAG_MAX_BYTES
    assert parse_metadata('{"k": "v\\u00e9"}') == {"k": "vé"}
    bad: list[tuple[Any, ...]] = [
        (parse_tags, '["a\\u0000"]', "tags"),
        (parse_tags, '["\\ud800"]', "tags"),
        (parse_tags, "[1]", "tags"),
        (parse_tags, '[""]', "tags"),
        (check_tag, "x" * (text.TAG_MAX_BYTES + 1), "tags"),
        (parse_metadata, '{"k\\u0000": "v"}', "metadata"),
        (parse_metadata, '{"k": "\\udc80"}', "metadata"),
        (parse_metadata, '{"k": "a\\nb"}', "metadata"),
        (parse_metadata, '{"k": 1}', "metadata"),
        (parse_metadata, '{"": "v"}', "metadata"),
        (parse_metadata, "{x", "metadata"),
        (check_metadata, {"k" * (text.METADATA_KEY_MAX_BYTES + 1): "v"}, "metadata"),
    ]
    for fn, value, field in bad:
        with pytest.raises(ValidationFailed) as exc:
            fn(value)
        _refused(exc, field)


# -- media types -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "text/plain",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "text/plain; charset=utf-8",
        "text/plain;charset=UTF-8;format=flowed",
        'multipart/mixed; boundary="a b;c"',
        'text/plain; x="quoted \\" pair"',
        "image/svg+xml",
        "application/x-thing;",
    ],
)
def test_media_types_accepted(value: str) -> None:
    assert check_media_type("content_type", f" {value} ") == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "text",
        "text/",
        "/plain",
        "text/plain/x",
        "text plain",
        "text/plain\r\nX-Evil: 1",
        "text/plain\r\n",
        "text/plain\x00",
        "text/plain\t",
        "text/plain; charset",
        "text/plain; charset=",
        'text/plain; x="unterminated',
        "text/plain; x=a b",
        "tëxt/plain",
        'text/plain; x="é"',
        "text/plain; " + "x=" + "a" * 300,
    ],
)
def test_media_types_refused(value: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_media_type("content_type", value)
    _refused(exc, "content_type")


@SETTINGS
@given(st.text(max_size=60))
def test_any_accepted_media_type_is_a_safe_header(value: str) -> None:
    try:
        accepted = check_media_type("content_type", value)
    except ValidationFailed:
        return
    _is_storable(accepted)
    accepted.encode("ascii")
    assert "\r" not in accepted and "\n" not in accepted


@SETTINGS
@given(
    st.from_regex(
        r"[a-z]{1,10}/[a-z0-9.+-]{1,20}(; ?[a-z]{1,8}=[A-Za-z0-9-]{1,10}){0,3}", fullmatch=True
    )
)
def test_generated_media_types_are_accepted(value: str) -> None:
    assert check_media_type("content_type", value) == value
