"""One admin process per test session (per xdist worker), on its own fresh database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.admin import AdminUnderTest
from tests.support.database import TestDatabase


@pytest.fixture(scope="session")
def admin_db(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_admin")  # fresh and migrated (0001 + 0002)
    yield db
    db.drop()


@pytest.fixture(scope="session")
def admin(
    admin_db: TestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminUnderTest]:
    am = AdminUnderTest(tmp_path_factory.mktemp("admin"), admin_db).start()
    yield am
    am.process.stop()


@pytest.fixture
def admin_token(admin: AdminUnderTest) -> str:
    # One per test: a session's token outlives its 15 minutes when the suite runs long.
    return admin.admin_token()
