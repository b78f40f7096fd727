"""A search page is encoded straight from catalog rows, without a model per row
(``schemas.item_of_catalog``, ``schemas.page_json``): it must encode exactly as the
validated ``SearchPage`` did."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic_core import to_json

from artstore.query.search.schemas import SearchItem, SearchPage, item_of_catalog, page_json

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _row(**changes: Any) -> dict[str, Any]:
    """A row as the search statements return it (asyncpg types: uuid text, aware
    datetimes, decoded JSONB, lists for arrays)."""
    row: dict[str, Any] = {
        "storage_element_id": "se-1",
        "file_id": str(uuid.uuid4()),
        "schema_version": 1,
        "original_filename": "Grüße q3_report.pdf",
        "content_type": "application/pdf",
        "size": 12_345,
        "checksum": "sha256:" + "ab" * 32,
        "uploaded_by": "alice",
        "uploaded_at": AT,
        "updated_at": AT + timedelta(seconds=1),
        "version": 3,
        "status": "active",
        "retention_policy": "temporary",
        "ttl_days": 30,
        "expires_at": AT + timedelta(days=30),
        "description": 'a "quoted" line\nand a second',
        "tags": ["b", "a"],
        "metadata": {"project": "p1", "ключ": "значение"},
        "finalized_by": None,
        "finalized_at": None,
        "previews": [256, 1024],
        "score": 0.0607927,
    }
    row.update(changes)
    return row


COPIES = [{"storage_element_id": "se-1", "status": "active"},
          {"storage_element_id": "se-2", "status": "deleted"}]  # fmt: skip


def _validated(row: dict[str, Any], copies: list[dict[str, Any]], scored: bool) -> SearchItem:
    """The way the service built an item before (validating every field)."""
    item = SearchItem.of(row, copies)
    if scored:
        item.score = float(row["score"] or 0.0)
    return item


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"previews": None},  # a row from before 0009's default
        {"previews": []},
        {"ttl_days": None, "expires_at": None, "retention_policy": "permanent"},
        {"finalized_by": "bob", "finalized_at": AT + timedelta(hours=2)},
        {"tags": [], "metadata": {}, "description": ""},
        {"status": "deleted", "score": None},
        {"file_id": uuid.uuid4()},  # a UUID object, as another driver setting gives
    ],
)
@pytest.mark.parametrize("scored", [True, False])
def test_an_item_encodes_as_the_validated_one(changes: dict[str, Any], scored: bool) -> None:
    row = _row(**changes)
    score = float(row["score"] or 0.0) if scored else None
    fast = to_json(item_of_catalog(row, COPIES, score))
    slow = _validated(row, COPIES, scored)
    assert fast == slow.model_dump_json().encode()
    assert (b'"score"' in fast) == scored


def test_a_row_of_an_older_catalog_gets_the_defaults() -> None:
    row = _row()
    for k in ("finalized_by", "finalized_at", "previews"):
        del row[k]
    fast = item_of_catalog(row, [], None)
    assert to_json(fast) == _validated(row, [], False).model_dump_json().encode()
    assert fast["previews"] == [] and fast["finalized_at"] is None


def test_a_page_encodes_as_the_validated_one() -> None:
    rows = [_row(), _row(previews=None), _row(status="expired")]
    fast = page_json(
        [item_of_catalog(r, COPIES[:1], float(r["score"])) for r in rows],
        total=1000,
        limit=3,
        offset=0,
        has_more=True,
        exact=False,
    )
    slow = SearchPage(
        items=[_validated(r, COPIES[:1], True) for r in rows],
        total=1000,
        limit=3,
        offset=0,
        has_more=True,
        total_relation="gte",
    )
    # What FastAPI did with the returned model: validate it again, then encode.
    again = SearchPage.model_validate(slow.model_dump())
    assert fast == again.model_dump_json().encode() == slow.model_dump_json().encode()
    exact = page_json([], total=0, limit=3, offset=0, has_more=False, exact=True)
    empty = SearchPage(items=[], total=0, limit=3, offset=0, has_more=False)
    assert exact == empty.model_dump_json().encode()
