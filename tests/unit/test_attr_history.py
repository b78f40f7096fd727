"""The attr's optional finalize history: old attrs keep their bytes, new ones round-trip,
and the rebuild's cheap path agrees with ``decode`` on both (issue 11 item 9)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from artstore.storage_element.attr import row as attr_row
from artstore.storage_element.attr.model import Attr, BadAttr, canonical, decode
from artstore.storage_element.attr.row import ROW_COLUMNS, decode_row, row_of

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _attr(**kw: Any) -> Attr:
    base: dict[str, Any] = {
        "file_id": "00000000-0000-4000-8000-000000000007",
        "storage_path": "2026/01/02/03/f_alice_20260102T030405_00000000.txt",
        "original_filename": "f.txt",
        "content_type": "text/plain",
        "size": 3,
        "checksum": "sha256:" + "0" * 64,
        "uploaded_by": "alice",
        "uploaded_at": AT,
        "updated_at": AT,
        "version": 1,
        "status": "active",
        "retention_policy": "permanent",
        "ttl_days": None,
        "expires_at": None,
        "description": "",
        "tags": [],
        "metadata": {},
    }
    return Attr.model_validate({**base, **kw})


def test_an_attr_without_history_keeps_the_bytes_it_always_had() -> None:
    raw = _attr().encode()
    data = json.loads(raw)
    assert "finalized_by" not in data and "finalized_at" not in data
    stored = data.pop("meta_checksum")
    assert stored == "sha256:" + hashlib.sha256(canonical(data)).hexdigest()
    back = decode(raw)
    assert back.finalized_by is None and back.finalized_at is None
    assert attr_row._fast(raw) is not None
    assert decode_row(raw) == row_of(back)


def test_an_attr_with_history_round_trips_on_the_cheap_path() -> None:
    later = datetime(2026, 2, 3, 4, 5, 6, 700000, tzinfo=UTC)
    raw = _attr(finalized_by="carol", finalized_at=later).encode()
    back = decode(raw)
    assert (back.finalized_by, back.finalized_at) == ("carol", later)
    assert attr_row._fast(raw) is not None
    row = dict(zip(ROW_COLUMNS, decode_row(raw), strict=True))
    assert (row["finalized_by"], row["finalized_at"]) == ("carol", later)
    assert decode_row(raw) == row_of(back)


@pytest.mark.parametrize(
    "extra",
    [
        {"finalized_by": None, "finalized_at": None},  # explicit nulls are not the model's form
        {"finalized_by": "carol"},  # one without the other
        {"finalized_by": 7, "finalized_at": "2026-02-03T04:05:06Z"},
    ],
)
def test_odd_history_gets_decodes_verdict(extra: dict[str, Any]) -> None:
    data = {**json.loads(_attr().encode()), **extra}
    del data["meta_checksum"]
    data["meta_checksum"] = "sha256:" + hashlib.sha256(canonical(data)).hexdigest()
    raw = canonical(data)
    assert attr_row._fast(raw) is None
    try:
        expected: Any = row_of(decode(raw))
    except BadAttr:
        expected = BadAttr
    if expected is BadAttr:
        with pytest.raises(BadAttr):
            decode_row(raw)
    else:
        assert decode_row(raw) == expected
