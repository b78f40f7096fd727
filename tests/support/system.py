"""A whole ArtStore under test: a real admin, storage elements that trust its JWKS and
are registered with it, and the ingester and/or query module reading that registry.

Usage (module or session scope is what keeps it quick; every part is a real process)::

    system = System(tmp_path_factory.mktemp("sys"), admin_db)   # starts the admin
    edit = system.add_se("edit")                 # started, trusting the admin, registered
    rw = system.add_se("rw", SE_MAX_CAPACITY="100000")
    ingester = system.start_ingester(IG_REPLICAS="2")
    query = system.start_query()                 # needs the catalog: SEs use admin_db too
    token = system.user_token(["user"])          # a real user's token from the admin
    ...
    system.stop()

Every process started through it is stopped by :meth:`System.stop`. ``admin_db`` is a
:class:`tests.support.database.TestDatabase`: the admin's tables and the SEs' catalog
live in it, so the query module reads what the SEs wrote.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from tests.support.admin import AUDIENCE, ISSUER, AdminUnderTest
from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.process import ServiceProcess, free_port
from tests.support.se import StorageElementUnderTest


class AdminIssuer:
    """Stands in for :class:`TestIssuer` where an SE trusts the admin: ``token(scopes)``
    is a real admin token of a service account holding exactly ``scopes`` (one account
    per distinct scope set, made on first use). ``sub`` cannot be chosen: it is the
    account's client id."""

    def __init__(self, admin: AdminUnderTest) -> None:
        self.admin = admin
        self.jwks_url = admin.jwks_url
        self._accounts: dict[str, tuple[str, str]] = {}

    def token(self, scopes: str = "", sub: str = "", **_: Any) -> str:
        key = " ".join(sorted(scopes.split()))
        if key not in self._accounts:
            sa = self.admin.create_sa(key.split())
            self._accounts[key] = (sa["client_id"], sa["client_secret"])
        client_id, secret = self._accounts[key]
        return str(self.admin.client_grant(client_id, secret)["access_token"])


class System:
    __test__ = False

    def __init__(self, root: Path, db: TestDatabase, **admin_env: str) -> None:
        self.root = root
        self.db = db
        root.mkdir(parents=True, exist_ok=True)
        self.admin = AdminUnderTest(root / "admin", db, **admin_env).start()
        self.issuer = AdminIssuer(self.admin)
        self.ses: list[StorageElementUnderTest] = []
        self.processes: list[ServiceProcess] = []

    # -- trust ---------------------------------------------------------------------------
    @property
    def trust_env(self) -> dict[str, str]:
        """What a service needs to verify the admin's tokens."""
        return {
            "ADMIN_URL": self.admin.url,
            "JWKS_URL": self.admin.jwks_url,
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
        }

    def credentials(self, account: str) -> dict[str, str]:
        """``{"client_id", "client_secret"}`` of a bootstrap service account
        (``ingester``, ``query``, ``storage-element``)."""
        path = self.root / "admin" / "data" / "bootstrap-credentials.json"
        return dict(json.loads(path.read_text())[account])

    def admin_token(self) -> str:
        return self.admin.admin_token()

    def user_token(self, roles: list[str] | None = None) -> str:
        """A fresh user (roles default ``["user"]``: files:read + files:write) and its token."""
        return self.admin.user_token(roles or ["user"])

    # -- storage elements ------------------------------------------------------------------
    def add_se(self, mode: str, *, register: bool = True, **env: str) -> StorageElementUnderTest:
        """A started local-disk SE trusting the admin; registered unless ``register=False``.
        Its ``client(scopes)`` carries an admin-issued token (see :class:`AdminIssuer`)."""
        se = StorageElementUnderTest(
            self.root / "ses",
            cast(TestIssuer, self.issuer),
            self.db.url,
            mode,
            {"JWKS_URL": self.admin.jwks_url, "JWT_ISSUER": ISSUER, **env},
        )
        self.ses.append(se)
        se.start()
        if register:
            self.register(se)
        return se

    def register(self, se: StorageElementUnderTest) -> dict[str, Any]:
        with self.admin.client(self.admin_token()) as c:
            r = c.post("/api/v1/storage-elements", json={"url": se.url})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def unregister(self, se: StorageElementUnderTest) -> None:
        with self.admin.client(self.admin_token()) as c:
            r = c.delete(f"/api/v1/storage-elements/{se.id}")
        assert r.status_code == 204, r.text

    # -- stateless services ----------------------------------------------------------------
    def ingester_env(self, **env: str) -> dict[str, str]:
        creds = self.credentials("ingester")
        return {
            **self.trust_env,
            "IG_CLIENT_ID": creds["client_id"],
            "IG_CLIENT_SECRET": creds["client_secret"],
            "IG_REGISTRY_POLL_INTERVAL": "1",
            "LOG_FORMAT": "json",
            **env,
        }

    def start_ingester(self, **env: str) -> ServiceProcess:
        """An ingester on a free port; returns once it has read the registry."""
        port = free_port()
        proc = ServiceProcess(
            "ingester", self.ingester_env(**env), port, self.root / f"ingester-{port}.log"
        )
        self.processes.append(proc)
        proc.start()
        wait_ready(proc)
        return proc

    def query_env(self, port: int, **env: str) -> dict[str, str]:
        creds = self.credentials("query")
        return {
            **self.trust_env,
            "DATABASE_URL": self.db.url,
            "QM_CLIENT_ID": creds["client_id"],
            "QM_CLIENT_SECRET": creds["client_secret"],
            "QM_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "LOG_FORMAT": "json",
            **env,
        }

    def start_query(self, **env: str) -> ServiceProcess:
        """The query module on a free port, reading the catalog the SEs write."""
        port = free_port()
        proc = ServiceProcess(
            "query", self.query_env(port, **env), port, self.root / f"query-{port}.log"
        )
        self.processes.append(proc)
        proc.start()
        return proc

    def worker_env(self, port: int, **env: str) -> dict[str, str]:
        creds = self.credentials("worker")
        return {
            **self.trust_env,
            "DATABASE_URL": self.db.url,
            "WK_PORT": str(port),
            "WK_CLIENT_ID": creds["client_id"],
            "WK_CLIENT_SECRET": creds["client_secret"],
            "WK_REGISTRY_POLL_INTERVAL": "1",
            "LOG_FORMAT": "json",
            **env,
        }

    def start_worker(self, **env: str) -> ServiceProcess:
        """A job worker on a free port; returns once its queue worker runs (``WK_*``
        schedules as given: an empty cron string switches one off)."""
        port = free_port()
        proc = ServiceProcess(
            "worker", self.worker_env(port, **env), port, self.root / f"worker-{port}.log"
        )
        self.processes.append(proc)
        proc.start()
        wait_ready(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        for se in self.ses:
            se.process.stop()
        self.admin.process.stop()


@contextlib.contextmanager
def system_of_its_own(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[System]:
    """A system on a database of its own (per xdist worker), stopped and dropped on the
    way out."""
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_{name}")
    sys_ = System(tmp_path_factory.mktemp(name), db)
    try:
        yield sys_
    finally:
        sys_.stop()
        db.drop()


def wait_ready(proc: ServiceProcess, timeout: float = 30.0) -> dict[str, Any]:
    """Until ``/health/ready`` is not ``fail`` (for the ingester: it has read the registry)."""
    import time

    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = httpx.get(f"{proc.url}/health/ready", timeout=5)
        body = dict(r.json())
        if r.status_code == 200:
            return body
        time.sleep(0.1)
    raise TimeoutError(f"{proc.service} not ready: {body}\n{proc.log()}")
