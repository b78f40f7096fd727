"""Mode transitions (architecture §5.4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from artstore.common.auth import Principal, RequireScope
from artstore.contracts.se import Mode
from artstore.storage_element.state import Node

router = APIRouter(prefix="/api/v1/mode", tags=["mode"])


class TransitionRequest(BaseModel):
    target_mode: Mode
    confirm: bool = False


class TransitionResult(BaseModel):
    previous_mode: str
    current_mode: str
    transitioned_at: datetime


@router.post("/transition", response_model=TransitionResult)
async def transition(
    body: TransitionRequest,
    node: Node,
    _: Annotated[Principal, Depends(RequireScope("storage:write"))],
) -> TransitionResult:
    previous, current, at = await node.modes.transition(body.target_mode, body.confirm)
    return TransitionResult(previous_mode=previous, current_mode=current, transitioned_at=at)
