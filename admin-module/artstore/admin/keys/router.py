"""Key listing and rotation (``/api/v1/auth/keys``) and the public JWKS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from artstore.admin.audit.service import Actor
from artstore.admin.keys.schemas import KeyInfo
from artstore.admin.state import DbSession, State
from artstore.common.auth import Principal, RequireScope

router = APIRouter(tags=["keys"])

AdminReader = Annotated[Principal, Depends(RequireScope("admin:read"))]
AdminWriter = Annotated[Principal, Depends(RequireScope("admin:write"))]


@router.get("/.well-known/jwks.json")
async def jwks(state: State) -> dict[str, Any]:
    return await state.keys.jwks()


@router.get("/api/v1/auth/keys", response_model=list[KeyInfo])
async def list_keys(state: State, _: AdminReader) -> list[KeyInfo]:
    await state.keys.reload()
    now = datetime.now(UTC)
    return [KeyInfo.of(k, now) for k in state.keys.loaded()]


@router.post("/api/v1/auth/keys/rotate", response_model=KeyInfo)
async def rotate_keys(state: State, session: DbSession, principal: AdminWriter) -> KeyInfo:
    key = await state.keys.rotate(session, Actor.of(principal))
    return KeyInfo.of(key, datetime.now(UTC))
