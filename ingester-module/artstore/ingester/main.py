"""The ingester app: ``artstore serve ingester``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from artstore.common.app import create_service_app
from artstore.common.auth import TOKEN_PATH
from artstore.common.cors import install_service_cors
from artstore.common.errors import error_body
from artstore.common.httpclient import make_async_client
from artstore.common.lean_http import UpstreamClient
from artstore.common.registry import ServiceToken, StorageRegistry, service_credentials
from artstore.common.se_tokens import SeTokens
from artstore.ingester.finalize.router import router as finalize_router
from artstore.ingester.health import health_checks
from artstore.ingester.metrics import IngesterCollector, IngestStats
from artstore.ingester.placement.capacity import Capacity
from artstore.ingester.settings import IGSettings
from artstore.ingester.state import IngesterState
from artstore.ingester.tus.middleware import TusMiddleware
from artstore.ingester.tus.router import router as tus_router
from artstore.ingester.uploads.router import router as uploads_router


def create_app(settings: IGSettings | None = None) -> FastAPI:
    settings = settings or IGSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client_id, client_secret = await asyncio.to_thread(
            service_credentials,
            settings.client_id,
            settings.client_secret,
            settings.credentials_file,
            "ingester",
        )
        token = ServiceToken(settings.admin_url.rstrip("/") + TOKEN_PATH, client_id, client_secret)
        registry = StorageRegistry(
            settings.admin_url,
            token,
            poll_interval=settings.registry_poll_interval,
            redis_url=settings.redis_url,
        )
        se_http = make_async_client(
            timeout=settings.upstream_timeout,
            connect_timeout=settings.upstream_connect_timeout,
            max_connections=200,
        )
        admin_http = make_async_client(timeout=5.0, connect_timeout=2.0)
        capacity = Capacity(registry, se_http, interval=settings.capacity_refresh_interval)
        se_client = UpstreamClient(
            connect_timeout=settings.upstream_connect_timeout, timeout=settings.upstream_timeout
        )
        ingester = IngesterState(
            settings,
            registry,
            token,
            se_http,
            admin_http,
            IngestStats(),
            capacity,
            se_client,
            SeTokens(token),
        )
        app.state.ingester = ingester
        app.state.health_checks = health_checks(registry)
        collector = IngesterCollector(registry, ingester.stats)
        app.state.metrics.registry.register(collector)
        await registry.start()
        await capacity.start()
        try:
            yield
        finally:
            await capacity.stop()
            await registry.stop()
            app.state.metrics.registry.unregister(collector)
            await se_http.aclose()
            await se_client.aclose()
            await admin_http.aclose()

    app = create_service_app(
        service="ingester",
        title="ArtStore ingester",
        description="Uploads streamed to storage elements: placement, replicas, batch, tus.",
        settings=settings,
        lifespan=lifespan,
        # Streamed and bounded by IG_MAX_FILE_SIZE / IG_BATCH_MAX_BYTES, not IG_MAX_BODY_BYTES.
        streaming=[
            ("POST", "/api/v1/files/upload"),
            ("PUT", "/api/v1/files/upload"),
            ("POST", "/api/v1/files/batch"),
            ("PATCH", "/api/v1/uploads/{storage_id}/{file_id}"),
            ("POST", "/api/v1/uploads"),  # tus creation-with-upload
        ],
    )

    async def on_disconnect(_: Request, __: Exception) -> JSONResponse:
        # The client went away mid-body; the SEs have rolled their partial writes back.
        return JSONResponse(error_body("VALIDATION_ERROR", "client disconnected"), 400)

    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.include_router(uploads_router)
    app.include_router(finalize_router)
    app.include_router(tus_router)
    # Outermost: the method override is seen by every layer (body limits included).
    app.add_middleware(TusMiddleware)
    # Outside even that: a preflight is answered before tus looks at it (common/cors.py).
    install_service_cors(app, settings)
    return app
