"""Fixtures shared by every test: the token issuer, the database, services as processes.

Two tiers: tests in tests/inprocess run the apps inside the test process; every test that
starts a real process (a service, SeaweedFS, the CLI, ``artstore up``) is marked
``process`` here, by what it uses, so ``make test-fast`` (``-m "not process"``) skips them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.storage_element.powerloss_report import (  # noqa: F401  the power-loss totals (issue 12)
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)
from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.se import SEBackend, StorageElementUnderTest
from tests.support.seaweed import SeaweedServer

SEFactory = Callable[..., StorageElementUnderTest]
SE_TESTS = Path(__file__).parent / "storage_element"
# Which backends the storage-element tests run on; e.g. "local" for a quick local run.
SE_BACKENDS = [b for b in os.environ.get("ARTSTORE_TEST_BACKENDS", "local,s3").split(",") if b]


# Fixtures of this file that start processes; those of the suites' conftests and test
# modules are found by the process-starting helpers their modules hold (_process_helpers).
PROCESS_FIXTURES = frozenset({"seaweed", "se_factory", "rw_se", "edit_se"})


def _process_helpers() -> tuple[object, ...]:
    from tests.support.admin import AdminUnderTest
    from tests.support.process import ServiceProcess
    from tests.support.system import System

    return (ServiceProcess, StorageElementUnderTest, AdminUnderTest, System, SeaweedServer)


def _starts_processes(namespace: dict[str, object], helpers: tuple[object, ...]) -> bool:
    """A module that holds a process-starting helper (or ``subprocess``) uses it; so does
    one that holds a test class (e.g. a conftest's service wrapper) whose module does."""
    for v in namespace.values():
        if v is subprocess or any(v is h for h in helpers):
            return True
        if isinstance(v, type) and v.__module__.startswith("tests."):
            mod = sys.modules.get(v.__module__)
            if mod is not None and mod.__dict__ is not namespace:
                home = vars(mod).values()
                if any(w is subprocess or any(w is h for h in helpers) for w in home):
                    return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``process`` every test that starts a real process: through a fixture of the
    root conftest, a fixture defined in a module that starts processes (the suites'
    conftests), or directly from its own module."""
    helpers = _process_helpers()
    by_module: dict[str, bool] = {}

    def module_starts(name: str) -> bool:
        if name not in by_module:
            mod = sys.modules.get(name)
            by_module[name] = mod is not None and _starts_processes(vars(mod), helpers)
        return by_module[name]

    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        closure = item.fixturenames
        defs = item._fixtureinfo.name2fixturedefs
        via_fixture = any(
            name in PROCESS_FIXTURES
            or any(
                d.baseid and d.func.__module__ != __name__ and module_starts(d.func.__module__)
                for d in defs.get(name, ())
            )
            for name in closure
        )
        if via_fixture or module_starts(item.module.__name__ if item.module else ""):
            item.add_marker(pytest.mark.process)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Storage-element tests run once per backend (ids ``local``/``s3``); a test marked
    ``local_only`` (about the local disk itself) runs on ``local`` only, ``s3_only`` on
    ``s3`` only."""
    if "se_backend" not in metafunc.fixturenames:
        return
    if not Path(str(metafunc.definition.path)).is_relative_to(SE_TESTS):
        return  # other suites use a local SE (se_backend falls back to it)
    names = list(SE_BACKENDS)
    for marker, keep in (("local_only", "local"), ("s3_only", "s3")):
        if metafunc.definition.get_closest_marker(marker):
            names = [n for n in names if n == keep]
    if "write_path" in metafunc.fixturenames:
        # Small uploads on local disk are published in groups; larger ones, and every
        # upload to S3, stream into a temp blob: a test asking for ``write_path`` runs on
        # each path its backend has (use WRITE_PATH_ENV[write_path] as the SE's env).
        combos = [(n, p) for n in names for p in (WRITE_PATHS if n == "local" else WRITE_PATHS[1:])]
        metafunc.parametrize(
            ("se_backend", "write_path"),
            combos,
            indirect=["se_backend"],
            scope="module",
            ids=[f"{n}-{p}" for n, p in combos],
        )
        return
    metafunc.parametrize("se_backend", names, indirect=True, scope="module")


WRITE_PATHS = ("grouped", "streamed")
# SE settings that put an upload of a few hundred KiB on each write path.
WRITE_PATH_ENV: dict[str, dict[str, str]] = {
    "grouped": {},
    "streamed": {"SE_GROUP_COMMIT_MAX_BYTES": "0"},
}


@pytest.fixture(scope="session")
def issuer() -> Iterator[TestIssuer]:
    srv = TestIssuer()
    yield srv
    srv.close()


@pytest.fixture(scope="session")
def database(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(worker)
    yield db
    db.drop()


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedServer]:
    """A real S3 server (SeaweedFS, fsync bucket), one per xdist worker, started lazily."""
    server = SeaweedServer().start()
    yield server
    server.stop(wait=False)  # its babysitter stops it: xdist gives a worker 10 s to exit


@pytest.fixture(scope="module")
def se_backend(request: pytest.FixtureRequest) -> SEBackend:
    name = getattr(request, "param", "local")
    if name == "s3":
        return SEBackend("s3", request.getfixturevalue("seaweed"))
    return SEBackend("local")


@pytest.fixture
def se_factory(
    tmp_path: Path, issuer: TestIssuer, database: TestDatabase, se_backend: SEBackend
) -> Iterator[SEFactory]:
    made: list[StorageElementUnderTest] = []

    def make(mode: str = "rw", start: bool = True, **env: str) -> StorageElementUnderTest:
        se = StorageElementUnderTest(
            tmp_path / "se", issuer, database.url, mode, env, backend=se_backend
        )
        made.append(se)
        return se.start() if start else se

    yield make
    for se in made:
        se.process.stop()


@pytest.fixture
def rw_se(se_factory: SEFactory) -> StorageElementUnderTest:
    return se_factory("rw")


@pytest.fixture
def edit_se(se_factory: SEFactory) -> StorageElementUnderTest:
    return se_factory("edit")
