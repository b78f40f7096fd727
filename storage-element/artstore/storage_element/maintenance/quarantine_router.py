"""Quarantine routes (architecture §5.5): list what was moved aside, show or purge an item."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from artstore.common.auth import Principal, RequireScope
from artstore.common.pagination import Page, Pagination
from artstore.contracts.quarantine import ITEM_MAX_CHARS, QuarantineItem
from artstore.storage_element.maintenance import quarantine
from artstore.storage_element.state import Node

router = APIRouter(prefix="/api/v1/maintenance/quarantine", tags=["maintenance"])

Operator = Annotated[Principal, Depends(RequireScope("storage:write"))]
Observer = Annotated[Principal, Depends(RequireScope("storage:read", "storage:write"))]
# Checked for size here; its form is checked by the service (400, not 422).
Item = Annotated[str, Path(max_length=ITEM_MAX_CHARS)]


@router.get("", response_model=Page[QuarantineItem])
async def list_quarantine(node: Node, _: Observer, page: Pagination) -> Page[QuarantineItem]:
    return await quarantine.listing(node, page)


@router.get("/{item}", response_model=QuarantineItem)
async def get_item(node: Node, _: Observer, item: Item) -> QuarantineItem:
    return await quarantine.one(node, item)


@router.delete("/{item}")
async def purge_item(node: Node, _: Operator, item: Item) -> dict[str, Any]:
    return await quarantine.purge(node, item)
