"""The admin module app: ``artstore serve admin``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from artstore.admin import locks, passwords
from artstore.admin.audit import checkpoint as audit_checkpoint
from artstore.admin.audit.router import router as audit_router
from artstore.admin.auth.authorize import router as authorize_router
from artstore.admin.auth.errors import install_oauth_handler
from artstore.admin.auth.revocations import admin_feed
from artstore.admin.auth.revocations import router as revocations_router
from artstore.admin.auth.router import router as auth_router
from artstore.admin.auth.throttle import LoginThrottle
from artstore.admin.bootstrap import bootstrap
from artstore.admin.console.router import router as console_router
from artstore.admin.events import Events
from artstore.admin.files.router import router as files_router
from artstore.admin.jobs.router import router as jobs_router
from artstore.admin.keys.crypto import load_key_encryption
from artstore.admin.keys.router import router as keys_router
from artstore.admin.keys.service import KeyStore
from artstore.admin.metrics import AdminMetrics
from artstore.admin.quarantine.router import router as quarantine_router
from artstore.admin.service_accounts.router import router as accounts_router
from artstore.admin.settings import AMSettings
from artstore.admin.state import AdminState
from artstore.admin.storage_elements.poller import Poller
from artstore.admin.storage_elements.router import router as se_router
from artstore.admin.users.router import router as users_router
from artstore.common.app import create_service_app
from artstore.common.auth import TokenVerifier
from artstore.common.cors import install_cors, parse_origins
from artstore.common.db import make_engine, make_sessionmaker
from artstore.common.health import CheckResult, HealthCheck
from artstore.common.httpclient import make_async_client
from artstore.common.settings import refuse_weak_secrets
from artstore.jobs.queue import make_queue

log = logging.getLogger("artstore.admin")


def _health_checks(state: AdminState) -> dict[str, HealthCheck]:
    async def database() -> CheckResult:
        try:
            await locks.ping(state.engine)
        except Exception as exc:  # any driver error means "not reachable"
            return CheckResult("fail", f"database unreachable: {exc.__class__.__name__}")
        return CheckResult("ok")

    async def keys() -> CheckResult:
        active = any(k.status == "active" for k in state.keys.loaded())
        return CheckResult("ok") if active else CheckResult("fail", "no active signing key")

    checks: dict[str, HealthCheck] = {"database": database, "signing_key": keys}
    if state.events.enabled:

        async def redis() -> CheckResult:
            ok = await state.events.ping()
            return CheckResult("ok") if ok else CheckResult("degraded", "redis unreachable")

        checks["redis"] = redis
    return checks


async def _start_keys(keys: KeyStore, attempts: int = 30) -> None:
    """PostgreSQL may still be starting (compose, `artstore up`): retry for a while."""
    for attempt in range(attempts):
        try:
            await keys.ensure_key()
            return
        except OSError as exc:
            if attempt == attempts - 1:
                raise
            log.warning("database not reachable yet (%s); retrying", exc)
            await asyncio.sleep(1.0)


def create_app(settings: AMSettings | None = None) -> FastAPI:
    settings = settings or AMSettings()
    if not settings.database_url:
        raise SystemExit("the admin module needs DATABASE_URL")
    refuse_weak_secrets(settings, settings.secrets_to_check())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        encryption = await asyncio.to_thread(load_key_encryption, settings)
        app.state.key_encryption = encryption  # also seals the sign-in form (auth/authorize.py)
        keys = KeyStore(sessions, encryption, settings.access_token_ttl)
        http = make_async_client(
            timeout=settings.se_timeout, connect_timeout=min(2.0, settings.se_timeout)
        )
        events = Events(settings.redis_url)
        state = AdminState(
            settings, engine, sessions, keys, http, events, AdminMetrics(app.state.metrics.registry)
        )
        app.state.admin = state
        # The issuer checks its own tokens against its own key store, not over HTTP.
        app.state.token_verifier = TokenVerifier(keys, settings.jwt_issuer, settings.jwt_audience)
        # Sign-in budgets and revocations (issue 13): auth/throttle.py, auth/revocations.py.
        passwords.configure(settings.password_hash_threads, settings.password_hash_queue)
        state.throttle = LoginThrottle.of(settings)
        state.revocations = admin_feed(settings, sessions)
        app.state.token_verifier.revocations = state.revocations.list
        app.state.health_checks = _health_checks(state)
        poll: asyncio.Task[None] | None = None
        checkpoints: asyncio.Task[None] | None = None
        queue = make_queue(settings.database_url, pool_size=2)
        try:
            await _start_keys(keys)
            await bootstrap(state)
            await queue.open_async()
            state.jobs_queue = queue
            poll = asyncio.create_task(Poller(state).run(), name="se-poller")
            checkpoints = asyncio.create_task(audit_checkpoint.run(state), name="audit-cp")
            state.revocations.start()
            yield
        finally:
            await state.revocations.close()
            await state.throttle.close()
            if poll is not None:
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll
            if checkpoints is not None:
                checkpoints.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checkpoints
            if state.jobs_queue is not None:
                await queue.close_async()
            await http.aclose()
            await events.close()
            await engine.dispose()

    app = create_service_app(
        service="admin",
        title="ArtStore admin module",
        description="Token issuer, users, service accounts, storage-element registry, audit.",
        settings=settings,
        lifespan=lifespan,
    )
    install_oauth_handler(app)
    for router in (
        auth_router,
        revocations_router,
        keys_router,
        users_router,
        accounts_router,
        se_router,
        files_router,
        audit_router,
        jobs_router,
        quarantine_router,
        console_router,
        authorize_router,
    ):
        app.include_router(router)
    # Swagger UI of every service obtains its token here from the browser (common/cors.py).
    install_cors(app, parse_origins(settings.cors_origins))
    return app
