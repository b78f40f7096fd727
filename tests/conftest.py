"""Fixtures shared by every test: the token issuer, the database, services as processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.se import StorageElementUnderTest

SEFactory = Callable[..., StorageElementUnderTest]


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


@pytest.fixture
def se_factory(tmp_path: Path, issuer: TestIssuer, database: TestDatabase) -> Iterator[SEFactory]:
    made: list[StorageElementUnderTest] = []

    def make(mode: str = "rw", start: bool = True, **env: str) -> StorageElementUnderTest:
        se = StorageElementUnderTest(tmp_path / "se", issuer, database.url, mode, env)
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
