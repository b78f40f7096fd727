"""``/api/v1/users`` (admin:read / admin:write)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from artstore.admin.audit.service import Actor
from artstore.admin.auth.revocations import announce_if
from artstore.admin.state import DbSession, State
from artstore.admin.users import service
from artstore.admin.users.schemas import NewPassword, User, UserCreate, UserPatch
from artstore.common.auth import Principal, RequireScope
from artstore.common.pagination import Page, Pagination

router = APIRouter(prefix="/api/v1/users", tags=["users"])

Reader = Annotated[Principal, Depends(RequireScope("admin:read"))]
Writer = Annotated[Principal, Depends(RequireScope("admin:write"))]


@router.get("", response_model=Page[User])
async def list_users(session: DbSession, _: Reader, page: Pagination) -> Page[User]:
    rows, total = await service.page(session, page.limit, page.offset)
    return Page.of([User.of(r) for r in rows], total, page)


@router.post("", status_code=201, response_model=User)
async def create_user(body: UserCreate, session: DbSession, principal: Writer) -> User:
    return User.of(await service.create(session, Actor.of(principal), body))


@router.get("/{user_id}", response_model=User)
async def get_user(user_id: uuid.UUID, session: DbSession, _: Reader) -> User:
    return User.of(await service.get(session, str(user_id)))


@router.patch(
    "/{user_id}",
    response_model=User,
    responses={409: {"description": "the last active admin cannot be disabled or demoted"}},
)
async def patch_user(
    user_id: uuid.UUID, body: UserPatch, session: DbSession, state: State, principal: Writer
) -> User:
    """Disabling a user or changing its roles also ends its access tokens at every
    service within ``REVOCATION_POLL_SECONDS`` (at once where Redis is shared)."""
    actor = Actor.of(principal)
    row, revoked = await service.patch(session, actor, state.settings, str(user_id), body)
    await announce_if(state, revoked)
    return User.of(row)


@router.delete(
    "/{user_id}",
    status_code=204,
    responses={409: {"description": "the last active admin cannot be deleted"}},
)
async def delete_user(
    user_id: uuid.UUID, session: DbSession, state: State, principal: Writer
) -> Response:
    revoked = await service.delete(session, Actor.of(principal), state.settings, str(user_id))
    await announce_if(state, revoked)
    return Response(status_code=204)


@router.post("/{user_id}/unlock", status_code=204)
async def unlock_user(
    user_id: uuid.UUID, session: DbSession, state: State, principal: Writer
) -> Response:
    """Lifts the sign-in lockouts of every address for this user."""
    assert state.throttle is not None
    await service.unlock(session, Actor.of(principal), str(user_id), state.throttle)
    return Response(status_code=204)


@router.post("/{user_id}/reset-password", status_code=204)
async def reset_password(
    user_id: uuid.UUID, body: NewPassword, session: DbSession, state: State, principal: Writer
) -> Response:
    """Ends the user's refresh tokens and access tokens (as disabling does)."""
    actor = Actor.of(principal)
    revoked = await service.reset_password(
        session, actor, state.settings, str(user_id), body.new_password
    )
    await announce_if(state, revoked)
    return Response(status_code=204)
