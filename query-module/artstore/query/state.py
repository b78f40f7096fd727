"""The query module's parts, wired once at start, and the typed dependencies routes use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from artstore.common.lean_http import UpstreamClient
from artstore.common.registry import ServiceToken, StorageRegistry
from artstore.common.se_tokens import SeTokens
from artstore.query.cache.store import MetadataCache
from artstore.query.files.catalog import CopyReader
from artstore.query.links.signer import LinkSigner
from artstore.query.metrics import QueryMetrics
from artstore.query.settings import QMSettings


@dataclass
class QueryState:
    settings: QMSettings
    engine: AsyncEngine
    registry: StorageRegistry
    service_token: ServiceToken  # for link downloads, which carry no caller token
    http: httpx.AsyncClient  # calls to storage elements (streams)
    cache: MetadataCache
    signer: LinkSigner
    metrics: QueryMetrics
    upstream: UpstreamClient  # download bodies from http:// SEs (lean keep-alive client)
    copy_reader: CopyReader  # the copies a download may use, one round trip
    # Tokens bound to one SE (token exchange, architecture §10): never the caller's own token.
    se_tokens: SeTokens


async def get_state(request: Request) -> QueryState:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop
    # on every request.
    state: QueryState = request.app.state.query
    return state


State = Annotated[QueryState, Depends(get_state)]
