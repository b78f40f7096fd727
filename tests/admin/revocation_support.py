"""What the revocation tests share: a whole system whose services learn of revocations
each their own way (the admin at once, an SE by Redis push with its polling turned down
to 10 minutes, a query module without Redis by polling every second), and polling for a
condition with a deadline (the promise is "within 30 s")."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, wait_ready

DEADLINE = 30.0
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class RevocationSystem:
    system: System
    se: StorageElementUnderTest
    query: str

    def targets(self) -> dict[str, str]:
        """One authenticated read per service that files:read (or a user) may make."""
        return {
            "admin": f"{self.system.admin.url}/api/v1/auth/me",
            "se": f"{self.se.url}/api/v1/files?limit=1",
            "query": f"{self.query}/api/v1/search?q=x",
        }


@contextlib.contextmanager
def revocation_system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[RevocationSystem]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_{name}")
    sys = System(tmp_path_factory.mktemp(name), db, REDIS_URL=REDIS)
    try:
        se = sys.add_se("rw", REDIS_URL=REDIS, REVOCATION_POLL_SECONDS="600")
        query = sys.start_query(REVOCATION_POLL_SECONDS="1")
        wait_ready(query)
        yield RevocationSystem(sys, se, query.url)
    finally:
        sys.stop()
        db.drop()


def status(url: str, token: str) -> int:
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE} s: {what}")
        time.sleep(0.2)


def refused_everywhere(env: RevocationSystem, token: str, what: str) -> None:
    """401 at the admin at once (the issuer applies its own entries on commit), then at
    the SE and the query module within the deadline."""
    targets = env.targets()
    assert status(targets["admin"], token) == 401, what
    for name, url in targets.items():
        until(lambda url=url: status(url, token) == 401, f"{name} refuses {what}")


def accepted_everywhere(env: RevocationSystem, token: str, what: str) -> None:
    for name, url in env.targets().items():
        assert status(url, token) == 200, f"{name} accepts {what}"
