"""An attr file's bytes straight to its catalog row, for rebuild-index (issue 7).

:func:`decode` builds a pydantic ``Attr`` (validate, dump to JSON values, canonical JSON,
SHA-256): about 40 µs an attr, most of a rebuild's Python time. :func:`decode_row` gives
the same verdict for much less: it accepts an attr only when it can show that ``decode``
would accept it with the very same values, and hands every other attr to ``decode``.

It can show that when the parsed JSON is already what ``Attr`` dumps: exactly the
model's fields, each of exactly the JSON type the model keeps unchanged (str, int not
bool, null, list of str, object of str), literals among their values, ``size`` ≥ 0,
``version`` ≥ 1, and times in the one form pydantic writes UTC times in
(``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``, the fraction only when not zero). Then the dump
equals the parsed dict, so the canonical JSON of the parsed dict minus
``meta_checksum`` is what ``decode`` hashes, and the checksum check is the same check.
Anything else (a missing or extra field, a number as a string, another time zone, a
bad checksum, ...) goes through ``decode``, which accepts or rejects it as it always did.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from artstore.storage_element.attr.model import (
    ATTR_MAX_BYTES,
    OPTIONAL_FIELDS,
    Attr,
    BadAttr,
    decode,
)

# Catalog columns taken from an attr, in order: the model's fields (== catalog.models.
# ATTR_COLUMNS, checked by a test; named here so this module needs no SQLAlchemy).
# The bit-rot hash (issue 19) is the SE's own business: no catalog column.
ROW_COLUMNS: tuple[str, ...] = tuple(f for f in Attr.model_fields if f != "bitrot")
_FIELDS = frozenset(ROW_COLUMNS)
# An attr may leave out the optional fields (finalize history) while they are unset.
_REQUIRED = _FIELDS - frozenset(OPTIONAL_FIELDS)
# The fast path takes attrs without previews; one with previews goes through decode.
_NO_PREVIEWS = _FIELDS - {"previews"}
_ABSENT: Any = object()
_BITROT_KEYS = frozenset(("alg", "hex"))
_BITROT_ALGS = frozenset(("xxh3-128",))
_BITROT_HEX = re.compile("[0-9a-f]{32}")

_STR = ("file_id", "storage_path", "original_filename", "content_type", "checksum",
        "uploaded_by", "description", "meta_checksum")  # fmt: skip
_STATUS = frozenset(("active", "expired", "deleted"))
_RETENTION = frozenset(("temporary", "permanent"))
# pydantic's JSON form of an aware UTC datetime: no fraction when microsecond == 0.
_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z")

Row = tuple[Any, ...]

# json.dumps builds an encoder on every call with these arguments; build them once.
# Same arguments as model.canonical (a test checks the two agree).
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_json_text = json.JSONEncoder(ensure_ascii=False).encode


def row_of(attr: Attr) -> Row:
    """``attr`` as catalog values in ``ROW_COLUMNS`` order (``metadata`` as JSON text,
    ``previews`` as the list of sizes)."""
    return tuple(
        _json_text(attr.metadata)
        if c == "metadata"
        else attr.preview_sizes()
        if c == "previews"
        else getattr(attr, c)
        for c in ROW_COLUMNS
    )


# What PostgreSQL refuses in any text (NUL) and what cannot be UTF-8 (a lone surrogate).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# In JSON text a NUL is the escape \u0000 (json.dumps escapes control characters), which
# jsonb refuses; an escape is one preceded by an even number of backslashes.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_METADATA = ROW_COLUMNS.index("metadata")
FILE_ID = ROW_COLUMNS.index("file_id")
STATUS = ROW_COLUMNS.index("status")
UPLOADED_AT = ROW_COLUMNS.index("uploaded_at")


def unstorable(row: Row) -> str | None:
    """Why PostgreSQL would refuse this row for its text (a reason code), or None.

    A cheap screen for the known cases (a NUL, a lone surrogate), so that a rebuild
    reports such a file instead of failing its COPY; anything else PostgreSQL refuses is
    found by the writer (``catalog.bulk``)."""
    for i, value in enumerate(row):
        if type(value) is str:
            texts: list[str] = [value]
        elif type(value) is list:
            texts = [v for v in value if type(v) is str]
        else:
            continue
        for text in texts:
            found = _BAD_TEXT.search(text)
            if found is not None:
                return "nul_character" if found.group() == "\x00" else "unencodable_text"
            if i == _METADATA and _NUL_ESCAPE.search(text):
                return "nul_character"
    return None


def _time(value: Any) -> datetime | None:
    """The datetime of a time in pydantic's own UTC form, else None (not provable)."""
    if type(value) is not str or not _UTC.fullmatch(value):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    if len(value) > 20 and at.microsecond == 0:  # ".000000Z" dumps as "Z"
        return None
    return at


def _fast(raw: bytes) -> Row | None:
    """The row when the attr is provably what ``decode`` accepts unchanged, else None."""
    data = json.loads(raw)
    if type(data) is not dict:
        return None
    bitrot = data.pop("bitrot", _ABSENT)
    if not (data.keys() == _NO_PREVIEWS or data.keys() == _REQUIRED):
        return None
    if bitrot is not _ABSENT:  # exactly what BitrotRef dumps, else decode decides
        if type(bitrot) is not dict or bitrot.keys() != _BITROT_KEYS:
            return None
        alg, digest = bitrot["alg"], bitrot["hex"]
        if type(alg) is not str or alg not in _BITROT_ALGS:
            return None
        if type(digest) is not str or not _BITROT_HEX.fullmatch(digest):
            return None
        data["bitrot"] = bitrot
    finalized_by, finalized_at_raw = data.get("finalized_by"), data.get("finalized_at")
    finalized_at = None if finalized_at_raw is None else _time(finalized_at_raw)
    if "finalized_by" in data and (type(finalized_by) is not str or finalized_at is None):
        return None  # null or another type: the model decides (Attr.content drops None)
    for name in _STR:
        if type(data[name]) is not str:
            return None
    size, version, ttl, schema = (
        data["size"],
        data["version"],
        data["ttl_days"],
        data["schema_version"],
    )
    if type(size) is not int or size < 0 or type(version) is not int or version < 1:
        return None
    if type(schema) is not int or (ttl is not None and type(ttl) is not int):
        return None
    status, retention = data["status"], data["retention_policy"]
    if type(status) is not str or status not in _STATUS:
        return None
    if type(retention) is not str or retention not in _RETENTION:
        return None
    tags, metadata = data["tags"], data["metadata"]
    if type(tags) is not list or any(type(t) is not str for t in tags):
        return None
    if type(metadata) is not dict or any(type(v) is not str for v in metadata.values()):
        return None
    uploaded, updated = _time(data["uploaded_at"]), _time(data["updated_at"])
    expires_raw = data["expires_at"]
    expires = None if expires_raw is None else _time(expires_raw)
    if uploaded is None or updated is None or (expires_raw is not None and expires is None):
        return None
    stored = data.pop("meta_checksum")
    if stored != "sha256:" + hashlib.sha256(_canonical(data).encode()).hexdigest():
        return None  # decode says why (it raises BadAttr)
    return (
        schema,
        data["file_id"],
        data["storage_path"],
        data["original_filename"],
        data["content_type"],
        size,
        data["checksum"],
        data["uploaded_by"],
        uploaded,
        updated,
        version,
        status,
        retention,
        ttl,
        expires,
        data["description"],
        tags,
        _json_text(metadata),
        finalized_by,
        finalized_at,
        [],
        stored,
    )


def decode_row(raw: bytes) -> Row:
    """The catalog row of a trusted attr; BadAttr exactly when ``decode`` raises it.

    One difference: two kinds of attr make ``decode`` raise something else than BadAttr
    (text that cannot be encoded, a lone surrogate escape such as ``"\\ud800"``:
    UnicodeEncodeError; JSON nested deeper than the recursion limit: RecursionError);
    here they are BadAttrs, so one such file is skipped and counted instead of failing
    a whole rebuild.
    """
    if len(raw) > ATTR_MAX_BYTES:
        raise BadAttr(f"attr is {len(raw)} bytes, over {ATTR_MAX_BYTES}")
    try:
        row = _fast(raw)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8): decode says so
        row = None
    if row is not None:
        return row
    try:
        return row_of(decode(raw))
    except UnicodeEncodeError as exc:
        raise BadAttr(f"attr text cannot be encoded: {exc}") from exc
    except RecursionError as exc:
        raise BadAttr("attr is nested too deeply") from exc
