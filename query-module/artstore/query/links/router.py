"""Signed links: created with files:read, served without a bearer token (architecture §8)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import APIRouter, Body, Depends, Request, Response

from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import ArtStoreError
from artstore.common.redact import describe
from artstore.common.registry import StorageElementRef
from artstore.common.se_tokens import ExchangeRefused
from artstore.query.files import proxy, service
from artstore.query.links.schemas import LinkAnswer, LinkRequest
from artstore.query.state import State

router = APIRouter(prefix="/api/v1", tags=["links"])

Reader = Annotated[Principal, Depends(RequireScope("files:read"))]


@router.post("/files/{file_id}/link", status_code=201, response_model=LinkAnswer)
async def create_link(
    file_id: uuid.UUID,
    state: State,
    _: Reader,
    body: Annotated[LinkRequest | None, Body()] = None,
) -> LinkAnswer:
    """A URL anyone may download the file with until it expires (404 unknown, 410 gone)."""
    fid = str(file_id)
    await service.downloadable_copies(state, fid)  # no link to what cannot be served
    expires_at = int(time.time()) + (body or LinkRequest()).expires_in
    token = state.signer.sign(fid, expires_at)
    state.metrics.links.labels("created").inc()
    base = state.settings.public_url.rstrip("/")
    return LinkAnswer(
        url=f"{base}/api/v1/links/{token}",
        expires_at=datetime.fromtimestamp(expires_at, UTC),
    )


@router.api_route("/links/{token}", methods=["GET", "HEAD"], response_model=None)
async def follow_link(token: str, request: Request, state: State) -> Response:
    """No bearer token: the signature is the credential. Range works as on downloads."""
    try:
        link = state.signer.verify(token, time.time())
    except ArtStoreError as exc:
        state.metrics.links.labels("expired" if exc.status == 410 else "invalid").inc()
        raise
    copies = await service.downloadable_copies(state, link.file_id)

    async def token_for(se: StorageElementRef) -> str:
        # The SE wants a token: the query module's own account reads on the link's
        # behalf, bound to that SE alone like every token sent to an SE.
        try:
            return await state.se_tokens.for_service(state.http, se.storage_id)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ExchangeRefused(
                "cannot get a service token to read the file", details={"reason": describe(exc)}
            ) from exc

    state.metrics.links.labels("served").inc()
    return await proxy.download(
        state, link.file_id, copies, request.method, dict(request.headers), token_for
    )
