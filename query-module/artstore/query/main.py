"""The query module app: ``artstore serve query``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from artstore.common.app import create_service_app
from artstore.common.cors import install_service_cors
from artstore.common.db import make_engine
from artstore.common.health import CheckResult, HealthCheck
from artstore.common.httpclient import make_async_client
from artstore.common.lean_http import UpstreamClient
from artstore.common.registry import ServiceToken, StorageRegistry, service_credentials
from artstore.common.se_tokens import SeTokens
from artstore.common.settings import MIN_KEY_LENGTH, refuse_weak_secrets
from artstore.query.cache import invalidation
from artstore.query.cache.store import RedisCache, make_cache
from artstore.query.edits.router import router as edits_router
from artstore.query.files.catalog import CopyReader
from artstore.query.files.router import router as files_router
from artstore.query.links.router import router as links_router
from artstore.query.links.signer import LinkSigner, load_secret
from artstore.query.metrics import QueryMetrics
from artstore.query.previews.router import router as previews_router
from artstore.query.search import repository
from artstore.query.search.router import router as search_router
from artstore.query.settings import QMSettings
from artstore.query.state import QueryState


def _health_checks(state: QueryState) -> dict[str, HealthCheck]:
    async def catalog() -> CheckResult:
        try:
            async with state.engine.connect() as conn:
                await repository.ping(conn)
        except Exception as exc:  # any driver error means "not reachable"
            return CheckResult("fail", f"catalog unreachable: {exc.__class__.__name__}")
        return CheckResult("ok")

    async def registry() -> CheckResult:
        reg = state.registry
        if not reg.ever_loaded:
            return CheckResult("fail", f"SE registry never read: {reg.last_error}")
        if not reg.reachable:
            # Downloads keep using the last registry read.
            return CheckResult("degraded", f"admin unreachable: {reg.last_error}")
        return CheckResult("ok")

    checks: dict[str, HealthCheck] = {"catalog": catalog, "registry": registry}
    cache = state.cache
    if isinstance(cache, RedisCache):

        async def redis() -> CheckResult:
            ok = await cache.ping()
            return CheckResult("ok") if ok else CheckResult("degraded", "redis unreachable")

        checks["redis"] = redis
    return checks


def create_app(settings: QMSettings | None = None) -> FastAPI:
    settings = settings or QMSettings()
    if not settings.database_url:
        raise SystemExit("the query module needs DATABASE_URL (the catalog)")
    refuse_weak_secrets(settings, {"QM_LINK_SECRET": (settings.link_secret, MIN_KEY_LENGTH)})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, pool_size=10)
        secret = await asyncio.to_thread(load_secret, settings.link_secret, settings.data_dir)
        client_id, client_secret = await asyncio.to_thread(
            service_credentials,
            settings.client_id,
            settings.client_secret,
            settings.credentials_file,
            "query",
        )
        token = ServiceToken(settings.token_url, client_id, client_secret)
        registry = StorageRegistry(
            settings.admin_url,
            token,
            poll_interval=settings.registry_poll_interval,
            redis_url=settings.redis_url,
        )
        http = make_async_client(
            timeout=settings.se_timeout,
            connect_timeout=settings.se_connect_timeout,
            max_connections=200,
        )
        cache = make_cache(settings.redis_url, settings.effective_cache_ttl())
        state = QueryState(
            settings,
            engine,
            registry,
            token,
            http,
            cache,
            LinkSigner(secret),
            QueryMetrics(app.state.metrics.registry),
            UpstreamClient(
                timeout=settings.se_timeout, connect_timeout=settings.se_connect_timeout
            ),
            CopyReader(settings.database_url),
            SeTokens(token),
        )
        app.state.query = state
        app.state.health_checks = _health_checks(state)
        listener: asyncio.Task[None] | None = None
        try:
            await registry.start()
            if settings.redis_url and settings.effective_cache_ttl() > 0:
                listener = asyncio.create_task(
                    invalidation.listen(settings.redis_url, cache), name="cache-invalidation"
                )
            yield
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            await registry.stop()
            await http.aclose()
            await state.upstream.aclose()
            await state.copy_reader.close()
            await cache.close()
            await engine.dispose()

    app = create_service_app(
        service="query",
        title="ArtStore query module",
        description="Search the catalog, download with failover across copies, signed links.",
        settings=settings,
        lifespan=lifespan,
    )
    app.include_router(search_router)
    app.include_router(files_router)
    app.include_router(edits_router)
    app.include_router(links_router)
    app.include_router(previews_router)
    install_service_cors(app, settings)  # the console and Swagger UI (common/cors.py)
    return app
