"""A whole system per test module: admin, storage elements registered with it, and an
ingester in front (see tests/support/system.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System


@pytest.fixture(scope="module")
def system_db(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_ig")
    yield db
    db.drop()


@pytest.fixture(scope="module")
def system(system_db: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sys_ = System(tmp_path_factory.mktemp("system"), system_db)
    yield sys_
    sys_.stop()


@pytest.fixture(scope="module")
def user_token(system: System) -> str:
    return system.user_token(["user"])


def client(proc: ServiceProcess, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=proc.url, headers=headers, timeout=120)


def se_bytes(se: StorageElementUnderTest, file_id: str) -> bytes:
    """What an SE serves for ``file_id`` (its own verified download)."""
    with se.client() as c:
        r = c.get(f"/api/v1/files/{file_id}/download")
    assert r.status_code == 200, r.text
    return r.content


def se_meta(se: StorageElementUnderTest, file_id: str) -> dict[str, Any] | None:
    with se.client() as c:
        r = c.get(f"/api/v1/files/{file_id}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return dict(r.json())
