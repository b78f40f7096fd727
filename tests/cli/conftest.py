"""The CLI against a whole real ArtStore: admin, an edit and an rw SE, the ingester and
(when the query module is present) the query service -- all real processes, started
once per session (per xdist worker). Each test gets its own config dir, so logins never
leak between tests and nothing is written to the repository or the user's home."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.admin import ADMIN_PASSWORD
from tests.support.database import TestDatabase
from tests.support.process import ROOT, ServiceProcess, free_port
from tests.support.se import StorageElementUnderTest
from tests.support.system import System

HAS_QUERY = importlib.util.find_spec("artstore.query.main") is not None


@dataclass
class Result:
    code: int
    out: str
    err: str

    def one_error_line(self, code: str) -> str:
        """The failure contract: non-zero exit, exactly one `error: ... (CODE)` line on
        stderr, no traceback."""
        lines = [ln for ln in self.err.splitlines() if ln.strip()]
        assert self.code != 0, (self.out, self.err)
        assert len(lines) == 1, self.err
        assert lines[0].startswith("error: "), self.err
        assert lines[0].endswith(f"({code})"), self.err
        assert "Traceback" not in self.err + self.out
        return lines[0]


class Cli:
    """``python -m artstore.cli.main`` in a subprocess, with its own config dir."""

    __test__ = False

    def __init__(self, system: SystemUnderTest, config_dir: Path) -> None:
        self.system = system
        self.config_dir = config_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ARTSTORE_")}
        self.env.update(
            {
                "ARTSTORE_CONFIG_DIR": str(config_dir),
                "ARTSTORE_ADMIN_URL": system.admin_url,
                "ARTSTORE_INGESTER_URL": system.ingester_url,
                "ARTSTORE_QUERY_URL": system.query_url,
                "COLUMNS": "250",  # tables are not wrapped into the assertions' way
            }
        )

    def __call__(
        self, *args: str, input: str | None = None, cwd: Path | None = None, **env: str
    ) -> Result:
        p = subprocess.run(
            [sys.executable, "-m", "artstore.cli.main", *args],
            env={**self.env, **env},
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd or self.config_dir.parent,
            check=False,
        )
        return Result(p.returncode, p.stdout, p.stderr)

    def ok(self, *args: str, **kw: str) -> Result:
        r = self(*args, **kw)
        assert r.code == 0, f"{args}: {r.err}{r.out}"
        return r

    def login_admin(self) -> Cli:
        self.ok("login", "-u", "admin", "--password", ADMIN_PASSWORD)
        return self

    def login_as(self, username: str, password: str) -> Cli:
        self.ok("login", "-u", username, "--password", password)
        return self


@dataclass
class SystemUnderTest:
    system: System
    edit: StorageElementUnderTest
    rw: StorageElementUnderTest
    ingester: ServiceProcess
    query: ServiceProcess | None

    @property
    def admin_url(self) -> str:
        return self.system.admin.url

    @property
    def ingester_url(self) -> str:
        return self.ingester.url

    @property
    def query_url(self) -> str:
        return self.query.url if self.query else f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def cli_db(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_cli")
    yield db
    db.drop()


@pytest.fixture(scope="session")
def sut(
    cli_db: TestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SystemUnderTest]:
    system = System(tmp_path_factory.mktemp("cli-system"), cli_db)
    try:
        edit = system.add_se("edit")
        rw = system.add_se("rw")
        ingester = system.start_ingester()
        query = system.start_query() if HAS_QUERY else None
        yield SystemUnderTest(system, edit, rw, ingester, query)
    finally:
        system.stop()


@pytest.fixture
def cli(sut: SystemUnderTest, tmp_path: Path) -> Cli:
    return Cli(sut, tmp_path / "config")


@pytest.fixture
def admin_cli(cli: Cli) -> Cli:
    return cli.login_admin()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL nothing listens on: a service that is down."""
    return f"http://127.0.0.1:{free_port()}"


needs_query = pytest.mark.skipif(not HAS_QUERY, reason="query module not present")

__all__ = ["ROOT", "Cli", "Result", "needs_query"]
