"""The in-process tier: each service's real app (its factory, its lifespan, real PostgreSQL
and Redis) called through ``httpx.ASGITransport`` inside the test process, so a test
costs milliseconds instead of a process start.

Tokens are minted by the session's test issuer and checked against a static key source
(no JWKS request); storage elements keep their files in the in-memory backend unless a
test asks for the disk. Nothing here starts a process: these tests are the
``make test-fast`` tier (tests/conftest.py marks the others ``process``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from artstore.admin.main import create_app as create_admin
from artstore.admin.settings import AMSettings
from artstore.common.errors import Unauthorized
from artstore.ingester.main import create_app as create_ingester
from artstore.ingester.settings import IGSettings
from artstore.query.main import create_app as create_query
from artstore.query.settings import QMSettings
from artstore.storage_element import main as se_main
from artstore.storage_element.backends.memory import MemoryBackend
from artstore.storage_element.main import create_app as create_se
from artstore.storage_element.settings import SESettings
from artstore.storage_element.state import SEState
from tests.support.database import TestDatabase
from tests.support.issuer import ALL_SCOPES, TestIssuer

ISSUER = "artstore-test"
AUDIENCE = "artstore"
ADMIN_PASSWORD = "bootstrap-admin-pw-123"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Where no request may go: the services read keys from StaticKeys, not from here.
NOWHERE = "http://127.0.0.1:9"
# The in-process admin's public URL: the `iss` of its tokens.
ADMIN_ISSUER = "https://admin.inprocess.test"
MEMORY_BYTES = 1 << 30  # the memory backend's "disk" size


class StaticKeys:
    """A :class:`~artstore.common.auth.KeySource` holding the test issuer's public key."""

    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.keys = {k["kid"]: k for k in jwks}

    async def get(self, kid: str) -> dict[str, Any]:
        if kid not in self.keys:
            raise Unauthorized("token signed by an unknown key")
        return self.keys[kid]


@asynccontextmanager
async def serve(app: FastAPI, keys: StaticKeys | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and yield a client that calls it in-process."""
    async with app.router.lifespan_context(app):
        if keys is not None:
            app.state.token_verifier.jwks = keys
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://inprocess", timeout=30.0
        ) as client:
            yield client


def bearer(issuer: TestIssuer, scopes: str = ALL_SCOPES, sub: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(scopes, sub)}"}


# -- storage element ---------------------------------------------------------------------


class InProcessSE:
    """A storage element app in this process, with its client and its backend."""

    def __init__(
        self, app: FastAPI, client: httpx.AsyncClient, settings: SESettings, backend: Any
    ) -> None:
        self.app = app
        self.client = client
        self.settings = settings
        self.backend = backend

    @property
    def id(self) -> str:
        return self.settings.id

    @property
    def node(self) -> SEState:
        node: SEState = self.app.state.node
        return node


SEMaker = Callable[..., AbstractAsyncContextManager[InProcessSE]]


@pytest.fixture
def make_se(
    tmp_path: Path, issuer: TestIssuer, database: TestDatabase, monkeypatch: pytest.MonkeyPatch
) -> SEMaker:
    """``async with make_se(mode="edit", disk=False, **settings) as se``: an SE app on the
    worker's catalog database; ``disk=True`` keeps its files on the local disk."""
    keys = StaticKeys(issuer.key.jwk())

    @asynccontextmanager
    async def make(
        mode: str = "rw", disk: bool = False, **settings: Any
    ) -> AsyncIterator[InProcessSE]:
        backend: Any = None if disk else MemoryBackend(total_bytes=MEMORY_BYTES)

        def node(s: SESettings, engine: Any) -> SEState:
            return SEState(s, engine, backend=backend)

        # The app factory builds its node in its lifespan; the memory backend goes in here.
        monkeypatch.setattr(se_main, "SEState", node)
        se_id = f"se-{uuid.uuid4().hex[:8]}"
        config = SESettings(
            id=se_id,
            mode=mode,
            data_dir=tmp_path / se_id,
            reserve_bytes=0,
            database_url=database.url,
            jwks_url=NOWHERE,
            revocations_url="",
            admin_url=NOWHERE,
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            log_format="json",
            catalog_retry_interval=0.5,
            **settings,
        )
        app = create_se(config)
        async with serve(app, keys) as client:
            client.headers.update(bearer(issuer))
            yield InProcessSE(app, client, config, backend)

    return make


@pytest.fixture
async def se(make_se: SEMaker) -> AsyncIterator[InProcessSE]:
    async with make_se("rw") as made:
        yield made


@pytest.fixture
async def edit_se(make_se: SEMaker) -> AsyncIterator[InProcessSE]:
    async with make_se("edit") as made:
        yield made


# -- admin module ------------------------------------------------------------------------


class InProcessAdmin:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient, db: TestDatabase) -> None:
        self.app = app
        self.client = client
        self.db = db
        self._admin_token: str | None = None

    async def token(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        r = await self.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": password},
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def headers(self) -> dict[str, str]:
        """The bootstrap admin's bearer header (one login per module: argon2 is slow)."""
        if self._admin_token is None:
            self._admin_token = await self.token()
        return {"Authorization": f"Bearer {self._admin_token}"}


@pytest.fixture(scope="module")
def admin_db(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    """A fresh database per module: the admin's bootstrap and its users are its own."""
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_inproc_admin")
    yield db
    db.drop()


@pytest.fixture(scope="module")
async def admin(
    admin_db: TestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[InProcessAdmin]:
    root = tmp_path_factory.mktemp("admin")
    config = AMSettings(
        database_url=admin_db.url,
        admin_url=NOWHERE,
        redis_url=REDIS_URL,
        public_url=ADMIN_ISSUER,
        jwt_audience=AUDIENCE,
        data_dir=root / "data",
        key_encryption_key="test-kek-" + uuid.uuid4().hex,
        bootstrap_admin_password=ADMIN_PASSWORD,
        se_poll_interval=3600,
        se_timeout=2,
        log_format="json",
    )
    app = create_admin(config)
    async with serve(app) as client:
        yield InProcessAdmin(app, client, admin_db)


# -- query module ------------------------------------------------------------------------


@pytest.fixture
async def query(
    issuer: TestIssuer, database: TestDatabase, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The query module on the worker's catalog database; no admin (search needs none)."""
    config = QMSettings(
        database_url=database.url,
        jwks_url=NOWHERE,
        admin_url=NOWHERE,
        revocations_url="",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        data_dir=tmp_path / "query",
        public_url="http://inprocess",
        client_id="query",
        client_secret="not-used-no-admin",
        registry_poll_interval=3600,
        log_format="json",
    )
    async with serve(create_query(config), StaticKeys(issuer.key.jwk())) as client:
        client.headers.update(bearer(issuer))
        yield client


# -- ingester ----------------------------------------------------------------------------


@pytest.fixture
async def ingester(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The ingester with no admin and so no storage element: what it refuses before it
    places a file (validation, auth, limits) and its answer when nothing can take it."""
    config = IGSettings(
        jwks_url=NOWHERE,
        admin_url=NOWHERE,
        revocations_url="",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        client_id="ingester",
        client_secret="not-used-no-admin",
        registry_poll_interval=3600,
        capacity_refresh_interval=3600,
        max_file_size=100_000,
        public_url="http://inprocess",
        log_format="json",
    )
    async with serve(create_ingester(config), StaticKeys(issuer.key.jwk())) as client:
        client.headers.update(bearer(issuer))
        yield client
