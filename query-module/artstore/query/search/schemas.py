"""API shapes of search and metadata: the SE's FileMetadata plus ``copies`` (architecture §8)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)
from pydantic_core import to_json

from artstore.common.bounds import Int64, Name, SearchText
from artstore.common.errors import ValidationFailed
from artstore.common.files import OPTIONAL_FIELDS, FileWithCopies
from artstore.common.pagination import MAX_LIMIT, MAX_OFFSET
from artstore.common.text import (
    FILENAME_MAX_BYTES,
    MAX_TAGS,
    METADATA_KEY_MAX_BYTES,
    METADATA_VALUE_MAX_BYTES,
    check_text,
)

Status = Literal["active", "expired", "deleted"]
SortBy = Literal["relevance", "uploaded_at", "original_filename", "size"]


class FileItem(FileWithCopies):
    """FileMetadata of the copy that speaks for the file, plus every copy."""


class SearchItem(FileItem):
    score: float | None = Field(None, description="Full-text rank; only when `query` is set")

    @model_serializer(mode="wrap")
    def _drop_absent_score(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # architecture §8: `score` appears only with `query`; other nulls (ttl_days) stay.
        out: dict[str, Any] = handler(self)
        if out.get("score") is None:
            out.pop("score", None)
        return out


# SearchItem's fields in its order, as a catalog row names them (file_id is a UUID there).
_ROW_FIELDS = tuple(k for k in SearchItem.model_fields if k not in ("copies", "score"))


def item_of_catalog(
    row: Mapping[str, Any], copies: Iterable[Mapping[str, Any]], score: float | None
) -> dict[str, Any]:
    """A search item as plain data, straight from a catalog row: what ``SearchItem`` of
    the row encodes to, without building and validating a model per row (100 of them a
    page cost ~4 ms, more than the SQL of many searches). The row's columns already have
    the fields' types; a column an older catalog lacks gets the field's default, as in
    :meth:`FileWithCopies.of`. Equality of the JSON: tests/query/test_search_items.py."""
    item = {k: row.get(k) if k in OPTIONAL_FIELDS else row[k] for k in _ROW_FIELDS}
    item["file_id"] = str(row["file_id"])
    if item["previews"] is None:  # FileMetadata's validator: None -> []
        item["previews"] = []
    item["copies"] = [
        {"storage_element_id": str(c["storage_element_id"]), "status": c["status"]} for c in copies
    ]
    if score is not None:  # SearchItem drops an absent score (architecture §8)
        item["score"] = score
    return item


def page_json(
    items: list[dict[str, Any]], total: int, limit: int, offset: int, has_more: bool, exact: bool
) -> bytes:
    """``SearchPage`` of these items, encoded (pydantic-core's encoder, as the model's)."""
    page = {
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_more": has_more,
        "total_relation": "eq" if exact else "gte",
    }
    return to_json(page)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: SearchText | None = Field(None, description="Full text, ranked (websearch syntax)")
    filename: Name | None = Field(None, max_length=FILENAME_MAX_BYTES)
    match: Literal["exact", "partial"] = "partial"
    file_extension: Name | None = Field(None, description="Without the dot; case-insensitive")
    content_type: Name | None = None
    tags: list[Name] | None = Field(
        None, description="Every tag must be present", max_length=MAX_TAGS
    )
    metadata: dict[str, str] | None = Field(
        None, description="Exact key/value pairs", max_length=64
    )
    uploaded_by: Name | None = None
    retention_policy: Literal["temporary", "permanent"] | None = None
    status: Status = "active"
    min_size: Int64 | None = None
    max_size: Int64 | None = None
    uploaded_after: datetime | None = None
    uploaded_before: datetime | None = None
    sort_by: SortBy | None = Field(
        None, description="Default: `relevance` with `query`, else `uploaded_at`"
    )
    sort_order: Literal["asc", "desc"] = "desc"
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)

    @field_validator("metadata")
    @classmethod
    def _metadata_text(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, val in (value or {}).items():
            try:
                check_text("metadata key", key, max_bytes=METADATA_KEY_MAX_BYTES)
                check_text("metadata value", val, max_bytes=METADATA_VALUE_MAX_BYTES)
            except ValidationFailed as exc:
                raise ValueError(exc.message) from None
        return value

    def checked(self) -> SearchRequest:
        """Rules that span fields; a breach is 400 VALIDATION_ERROR."""
        bad: list[dict[str, str]] = []
        if (
            self.min_size is not None
            and self.max_size is not None
            and (self.min_size > self.max_size)
        ):
            bad.append({"field": "min_size", "message": "min_size is above max_size"})
        after, before = self.after, self.before
        if after is not None and before is not None and after > before:
            bad.append({"field": "uploaded_after", "message": "after is later than before"})
        if self.sort_by == "relevance" and not self.has_query:
            bad.append({"field": "sort_by", "message": "relevance needs a query"})
        if self.filename is not None and not self.filename:
            bad.append({"field": "filename", "message": "empty filename"})
        if bad:
            raise ValidationFailed("request is not valid", details={"fields": bad})
        return self

    @property
    def has_query(self) -> bool:
        return bool(self.query and self.query.strip())

    @property
    def effective_sort(self) -> SortBy:
        return self.sort_by or ("relevance" if self.has_query else "uploaded_at")

    @property
    def after(self) -> datetime | None:
        return None if self.uploaded_after is None else _aware(self.uploaded_after)

    @property
    def before(self) -> datetime | None:
        return None if self.uploaded_before is None else _aware(self.uploaded_before)

    @property
    def extension(self) -> str | None:
        if self.file_extension is None:
            return None
        return self.file_extension.strip().removeprefix(".").lower()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class SearchPage(BaseModel):
    items: list[SearchItem]
    total: int
    limit: int
    offset: int
    has_more: bool
    total_relation: Literal["eq", "gte"] = Field(
        "eq", description="`gte`: more files match than were counted (QM_SEARCH_COUNT_LIMIT)"
    )
