"""``/api/v1/service-accounts`` (admin:read / admin:write)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from artstore.admin.audit.service import Actor
from artstore.admin.auth.revocations import announce_if
from artstore.admin.service_accounts import service
from artstore.admin.service_accounts.schemas import (
    RotatedSecret,
    ServiceAccount,
    ServiceAccountCreate,
    ServiceAccountCreated,
    ServiceAccountPatch,
)
from artstore.admin.state import DbSession, State
from artstore.common.auth import Principal, RequireScope
from artstore.common.pagination import Page, Pagination

router = APIRouter(prefix="/api/v1/service-accounts", tags=["service accounts"])

Reader = Annotated[Principal, Depends(RequireScope("admin:read"))]
Writer = Annotated[Principal, Depends(RequireScope("admin:write"))]


@router.get("", response_model=Page[ServiceAccount])
async def list_accounts(session: DbSession, _: Reader, page: Pagination) -> Page[ServiceAccount]:
    rows, total = await service.page(session, page.limit, page.offset)
    return Page.of([ServiceAccount.of(r) for r in rows], total, page)


@router.post("", status_code=201, response_model=ServiceAccountCreated)
async def create_account(
    body: ServiceAccountCreate, session: DbSession, state: State, principal: Writer
) -> ServiceAccountCreated:
    row, secret = await service.create(
        session, Actor.of(principal), body, state.settings.sa_secret_ttl_days
    )
    return ServiceAccountCreated(**ServiceAccount.of(row).model_dump(), client_secret=secret)


@router.get("/{sa_id}", response_model=ServiceAccount)
async def get_account(sa_id: uuid.UUID, session: DbSession, _: Reader) -> ServiceAccount:
    return ServiceAccount.of(await service.get(session, str(sa_id)))


@router.patch("/{sa_id}", response_model=ServiceAccount)
async def patch_account(
    sa_id: uuid.UUID, body: ServiceAccountPatch, session: DbSession, state: State, principal: Writer
) -> ServiceAccount:
    """Suspending an account or taking scopes away also ends its access tokens at every
    service within ``REVOCATION_POLL_SECONDS`` (at once where Redis is shared)."""
    actor = Actor.of(principal)
    row, revoked = await service.patch(session, actor, state.settings, str(sa_id), body)
    await announce_if(state, revoked)
    return ServiceAccount.of(row)


@router.delete("/{sa_id}", status_code=204)
async def delete_account(
    sa_id: uuid.UUID, session: DbSession, state: State, principal: Writer
) -> Response:
    """Its access tokens end too (as on suspension)."""
    revoked = await service.delete(session, Actor.of(principal), state.settings, str(sa_id))
    await announce_if(state, revoked)
    return Response(status_code=204)


@router.post("/{sa_id}/rotate-secret", response_model=RotatedSecret)
async def rotate_secret(
    sa_id: uuid.UUID, session: DbSession, state: State, principal: Writer
) -> RotatedSecret:
    """The old secret stops at once, and so do the access tokens got with it."""
    row, secret, revoked = await service.rotate_secret(
        session, Actor.of(principal), state.settings, str(sa_id)
    )
    await announce_if(state, revoked)
    return RotatedSecret(
        client_id=row.client_id,
        client_secret=secret,
        secret_expires_at=row.secret_expires_at,
    )
