"""File-id and ownership policy of the storage element (architecture §10, issue 11 items 3, 9).

Three checks the routes make before a change, so the write path (files/upload.py,
files/mutate.py) stays the same for every caller:

- :func:`check_chosen_id`: a caller-chosen ``file_id`` needs a token acting for a service
  (``act``, token exchange) or ``storage:write``: 403 otherwise, without asking anything
  (architecture §10). An acting user token's id that the catalog already knows (any SE, any
  status: a tombstone keeps its id taken) is 409; service accounts and ``storage:write``
  may take any id (replicas, repair, restore). Without a catalog to ask, such an id is
  refused (fail closed): 503 while the catalog is unreachable (retry later), 403 when
  this SE has no catalog at all (never answerable).
- :func:`history_of`: ``uploaded_by``, ``uploaded_at``, ``finalized_by`` and
  ``finalized_at`` (query string) are honoured from a service writing a copy for the
  original uploader (an acting token, or a service account with ``storage:write``:
  ingester replicas, finalize); from anyone else they are 403.
- :func:`require_owner`: a ``user`` may change (PATCH, DELETE) only their own files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from artstore.common import ownership
from artstore.common.auth import Principal
from artstore.common.errors import Conflict, Forbidden, ServiceUnavailable, ValidationFailed
from artstore.common.text import check_text
from artstore.storage_element.catalog.sync import CATALOG_ERRORS
from artstore.storage_element.state import SEState

HISTORY_FIELDS = ("uploaded_by", "uploaded_at", "finalized_by", "finalized_at")
_NAME_FIELDS = ("uploaded_by", "finalized_by")
MAX_NAME_BYTES = 256


async def check_chosen_id(node: SEState, principal: Principal, file_id: str | None) -> None:
    """Refuse a chosen id someone else's file already has (see the module doc)."""
    if file_id is None:
        return
    if not ownership.may_choose_id(principal):
        raise Forbidden(
            "only a service acting for you, or storage:write, may choose a file_id",
            details={"field": "file_id", "reason": "id_needs_service"},
        )
    if ownership.may_take_any_id(principal):
        return
    repo = node.catalog.repo
    if repo is None:
        raise Forbidden(
            "this storage element has no catalog to check a chosen file_id against",
            details={"field": "file_id", "reason": "no_catalog"},
        )
    try:
        taken = await asyncio.wait_for(repo.file_id_taken(file_id), node.settings.catalog_timeout)
    except CATALOG_ERRORS as exc:
        raise ServiceUnavailable(
            "the catalog cannot confirm that the chosen file_id is free; retry later",
            details={"field": "file_id", "reason": "catalog_unavailable"},
        ) from exc
    if taken:
        raise Conflict(f"file {file_id} already exists", details={"file_id": file_id})


def history_of(principal: Principal, params: Iterable[tuple[str, str]]) -> dict[str, Any] | None:
    """The history fields of an upload's query string, parsed; None when there are none.
    403 unless the caller is a service account; 400 when a value is malformed."""
    got: dict[str, str] = {}
    for name, value in params:
        if name in HISTORY_FIELDS:
            if name in got:
                raise ValidationFailed(f"{name} given twice", details={"field": name})
            got[name] = value
    if not got:
        return None
    if not ownership.may_state_history(principal):
        raise Forbidden(
            "only a service writing a copy for its uploader may state a file's history",
            details={"fields": sorted(got), "reason": "history_needs_service"},
        )
    if ("finalized_by" in got) != ("finalized_at" in got):
        raise ValidationFailed(
            "finalized_by and finalized_at go together", details={"field": "finalized_at"}
        )
    out: dict[str, Any] = {}
    for name, value in got.items():
        out[name] = _name(name, value) if name in _NAME_FIELDS else _time(name, value)
    return out


def refuse_form_history(name: str) -> None:
    """History is taken from the query string only: a form field of that name is 400
    rather than silently ignored like other unknown fields."""
    if name in HISTORY_FIELDS:
        raise ValidationFailed(
            f"{name} is accepted in the query string only", details={"field": name}
        )


async def require_owner(node: SEState, principal: Principal, file_id: str) -> None:
    """403 unless ``principal`` may change ``file_id`` (read before the change:
    ``uploaded_by`` never changes). An unknown id passes: the change answers 404."""
    if ownership.acts_on_any_file(principal):
        return
    attr = await node.find_attr(file_id)
    if attr is not None:
        ownership.require_owner(principal, attr.uploaded_by, file_id)


def _name(field: str, value: str) -> str:
    if not value:
        raise ValidationFailed(f"{field} must not be empty", details={"field": field})
    return check_text(field, value, max_bytes=MAX_NAME_BYTES)


def _time(field: str, value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ValidationFailed(
            f"{field} must be an ISO 8601 time with a zone", details={"field": field}
        )
    return at.astimezone(UTC)
