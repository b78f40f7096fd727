"""The one text policy (architecture §10 "Text"): every piece of text a client gives us is
valid or refused, and every limit is in bytes.

Valid text is a ``str`` that encodes to UTF-8 and that PostgreSQL's ``text``/``jsonb``
accept: no NUL, no other C0 control (U+0001-U+001F), no DEL, no C1 control
(U+0080-U+009F) and no surrogate code point (a lone surrogate cannot be encoded; a
JSON body may carry one as ``"\\ud800"``). Tab and newline (LF, or CR LF) are allowed in
multi-line text only, i.e. a description. Anything else is refused with 400
``VALIDATION_ERROR`` and ``details.field`` naming the field; nothing is ever stripped
or cut silently.

Invalid UTF-8 can only be seen where the bytes are: Starlette decodes query strings and
python-multipart's users decode form fields with ``errors="replace"``, which would turn
bad bytes into U+FFFD (a valid character). So the raw query string is split and decoded
strictly here (:func:`decode_query`), the multipart reader decodes every field and
part header strictly (:func:`decode_utf8`), tus metadata is base64 decoded strictly,
and a JSON body that is not UTF-8 is not JSON (FastAPI answers 400). Header values
arrive as latin-1 text; the one header that becomes data, a content type, must be ASCII.

Limits (UTF-8 bytes), see docs/storage-element.md "Text and name policy":

==================  ======  =====================================================
field               bytes   over the limit
==================  ======  =====================================================
filename            1024    400 (kept whole: never cut)
content type        256     400
tag                 256     400 (at most 1024 tags: 413 ``ATTR_TOO_LARGE``)
metadata key        256     400
metadata value      4096    413 ``ATTR_TOO_LARGE`` (it could never fit the attr)
description         4096    413 ``ATTR_TOO_LARGE`` (it could never fit the attr)
==================  ======  =====================================================

Free text (description, metadata values) is bounded by the SE's 4 KiB attr; fields
within their own limit that together do not fit the attr are 413 as well.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote_to_bytes

from artstore.common.errors import ArtStoreError, AttrTooLarge, ValidationFailed

# The SE's attr limit (storage_element.attr.model.ATTR_MAX_BYTES; a unit test keeps
# them equal): free text longer than this can never be stored.
ATTR_BUDGET = 4096
FILENAME_MAX_BYTES = 1024
CONTENT_TYPE_MAX_BYTES = 256
TAG_MAX_BYTES = 256
METADATA_KEY_MAX_BYTES = 256
METADATA_VALUE_MAX_BYTES = ATTR_BUDGET
DESCRIPTION_MAX_BYTES = ATTR_BUDGET
# Each tag takes at least 4 bytes of the attr ("a",): more can never fit in 4096 bytes.
MAX_TAGS = 1024
DEFAULT_FILENAME = "file"

# C0, DEL, C1 and every surrogate. Multi-line text may also hold tab, LF and CR LF.
_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_BAD_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]|\r(?!\n)")
_WHAT = {"\x00": "NUL", "\t": "a tab", "\n": "a line break", "\r": "a line break"}


def _describe(ch: str) -> str:
    if ch in _WHAT:
        return _WHAT[ch]
    if "\ud800" <= ch <= "\udfff":
        return "a lone surrogate"
    return f"the control character U+{ord(ch):04X}"


def check_text(
    field: str,
    value: str,
    *,
    max_bytes: int,
    multiline: bool = False,
    too_long: type[ArtStoreError] = ValidationFailed,
) -> str:
    """``value`` when it is valid text of at most ``max_bytes`` UTF-8 bytes; else
    ``ValidationFailed`` (or ``too_long`` for the length) naming ``field``."""
    bad = (_BAD_MULTILINE if multiline else _BAD).search(value)
    if bad is not None:
        raise ValidationFailed(
            f"{field} must not contain {_describe(bad.group()[0])}", details={"field": field}
        )
    # A character is at most 4 bytes: short text needs no encoding to be measured.
    if len(value) * 4 > max_bytes and len(value.encode()) > max_bytes:
        raise too_long(
            f"{field} is longer than {max_bytes} bytes (UTF-8)",
            details={"field": field, "max_bytes": max_bytes},
        )
    return value


def decode_utf8(field: str, raw: bytes | bytearray) -> str:
    """Bytes a client sent as text, decoded strictly (never into U+FFFD)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed(f"{field} is not valid UTF-8", details={"field": field}) from None


def decode_query(raw: bytes) -> list[tuple[str, str]]:
    """A raw query string (``scope["query_string"]``) as ``(name, value)`` pairs, like
    Starlette's ``query_params.multi_items()`` but refusing percent-escapes that are
    not UTF-8 (Starlette would replace them with U+FFFD)."""
    pairs = []
    for item in raw.split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        key = decode_utf8("query parameter name", unquote_to_bytes(name.replace(b"+", b" ")))
        pairs.append((key, decode_utf8(key, unquote_to_bytes(value.replace(b"+", b" ")))))
    return pairs


# -- the fields ---------------------------------------------------------------------------
def check_filename(field: str, value: str) -> str:
    """The name kept in metadata: the last path component of what the client sent
    (``a/b.txt`` and ``C:\\x\\b.txt`` keep ``b.txt``), surrounding whitespace removed;
    ``file`` when nothing is left (``""``, ``.``, ``..``, ``dir/``). Control characters
    and over-long names are refused, not stripped or cut."""
    check_text(field, value, max_bytes=FILENAME_MAX_BYTES)
    base = value.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return DEFAULT_FILENAME if base in ("", ".", "..") else base


def check_description(value: str, field: str = "description") -> str:
    return check_text(
        field, value, max_bytes=DESCRIPTION_MAX_BYTES, multiline=True, too_long=AttrTooLarge
    )


def check_tag(value: object, field: str = "tags") -> str:
    """One tag: a non-empty string, surrounding whitespace removed."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("each tag must be a non-empty string", details={"field": field})
    return check_text(field, value, max_bytes=TAG_MAX_BYTES).strip()


def check_tags(values: list[str], field: str = "tags") -> list[str]:
    if len(values) > MAX_TAGS:
        raise AttrTooLarge(f"more than {MAX_TAGS} tags", details={"field": field})
    return [check_tag(v, field) for v in values]


def parse_tags(value: str, field: str = "tags") -> list[str]:
    """A form/query ``tags`` value: one tag, or a JSON array of tags."""
    raw: object = value
    if value.lstrip().startswith("["):
        try:
            raw = json.loads(value)
        except ValueError:
            raise ValidationFailed(
                f"{field} is not a valid JSON array", details={"field": field}
            ) from None
    items = raw if isinstance(raw, list) else [raw]
    return [check_tag(item, field) for item in items]


def check_metadata(data: object, field: str = "metadata") -> dict[str, str]:
    """A flat object of string keys (non-empty) and string values, each valid text."""
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in data.items()
    ):
        raise ValidationFailed(
            f"{field} must be a flat JSON object of strings", details={"field": field}
        )
    for key, val in data.items():
        check_text(field, key, max_bytes=METADATA_KEY_MAX_BYTES)
        check_text(field, val, max_bytes=METADATA_VALUE_MAX_BYTES, too_long=AttrTooLarge)
    return dict(data)


def parse_metadata(value: str, field: str = "metadata") -> dict[str, str]:
    """A form/query ``metadata`` value: a JSON object of strings."""
    try:
        data = json.loads(value)
    except ValueError:
        raise ValidationFailed(f"{field} is not valid JSON", details={"field": field}) from None
    return check_metadata(data, field)


# -- media types (RFC 9110 §8.3.1) ---------------------------------------------------------
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# qdtext / quoted-pair without HTAB and obs-text: tabs are refused everywhere but in a
# description, and a content type is ASCII (it is sent back as a header).
_QUOTED = r'"(?:[ \x21\x23-\x5b\x5d-\x7e]|\\[ \x21-\x7e])*"'
_MEDIA_TYPE = re.compile(
    rf"{_TCHARS}/{_TCHARS}(?: *; *(?:{_TCHARS}=(?:{_TCHARS}|{_QUOTED}))?)*", re.ASCII
)


def check_media_type(field: str, value: str) -> str:
    """``value`` (surrounding spaces removed) when it is a media type: ``type/subtype``
    and ``; name=value`` parameters of tokens or quoted strings. No CR/LF or other
    control character can pass, so it is always safe to send back as a header."""
    check_text(field, value, max_bytes=CONTENT_TYPE_MAX_BYTES)
    value = value.strip(" ")
    if not _MEDIA_TYPE.fullmatch(value):
        raise ValidationFailed(
            f"{field} is not a media type (type/subtype; name=value)", details={"field": field}
        )
    return value
