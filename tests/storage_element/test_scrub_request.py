"""``POST /api/v1/maintenance/scrub`` (issue 15): the job worker's se.scrub asks an SE
for a scrub pass now and waits for ``passes`` to grow in the status."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.support.se import StorageElementUnderTest

SEFactory = Any


def _scrub(se: StorageElementUnderTest) -> dict[str, Any]:
    with se.client() as c:
        r = c.get("/api/v1/maintenance/status")
    assert r.status_code == 200, r.text
    return dict(r.json()["scrub"])


def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


@pytest.mark.local_only
def test_a_requested_pass_runs_now_and_is_counted(se_factory: SEFactory) -> None:
    # A day between passes: only the pass at start and the requested one run here.
    se = se_factory("rw", SE_SCRUB_PASS_INTERVAL="86400")
    _wait(lambda: _scrub(se)["passes"] == 1)  # the pass at start (an empty SE)
    with se.client() as c:
        for i in range(3):
            r = c.post("/api/v1/files", content=os.urandom(500 + i), params={"filename": "f"})
            assert r.status_code == 201, r.text
        checked = _scrub(se)["files_checked"]
        r = c.post("/api/v1/maintenance/scrub")
    assert r.status_code == 202, r.text
    assert r.json()["passes"] == 1
    _wait(lambda: _scrub(se)["passes"] == 2)
    assert _scrub(se)["files_checked"] == checked + 3
    assert _scrub(se)["last_pass_at"] is not None

    with se.client(scopes="storage:read") as c:
        assert c.post("/api/v1/maintenance/scrub").status_code == 403
    with se.client(scopes="") as c:
        assert c.post("/api/v1/maintenance/scrub").status_code == 401


@pytest.mark.local_only
def test_scrub_is_refused_where_scrubbing_is_off(se_factory: SEFactory) -> None:
    se = se_factory("rw", SE_SCRUB_BYTES_PER_SEC="0")
    with se.client() as c:
        r = c.post("/api/v1/maintenance/scrub")
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "CONFLICT"
