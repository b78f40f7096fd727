"""Fixtures shared by every test: the token issuer, the database, services as processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.se import SEBackend, StorageElementUnderTest
from tests.support.seaweed import SeaweedServer

SEFactory = Callable[..., StorageElementUnderTest]
SE_TESTS = Path(__file__).parent / "storage_element"
# Which backends the storage-element tests run on; e.g. "local" for a quick local run.
SE_BACKENDS = [b for b in os.environ.get("ARTSTORE_TEST_BACKENDS", "local,s3").split(",") if b]


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
