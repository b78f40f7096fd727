"""Issue 13 finding 3 through the query module: a Range of thousands of digits relayed
to the SE is the SE's 416, not a 502 (a running admin, SE and query)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.system import System

BIG = "9" * 5000
DATA = b"0123456789" * 100


@pytest.fixture(scope="module")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_qbounds")
    sys_ = System(tmp_path_factory.mktemp("qbounds"), db)
    try:
        yield sys_
    finally:
        sys_.stop()
        db.drop()


def test_range_of_thousands_of_digits_through_the_query(system: System) -> None:
    se = system.add_se("rw")
    query = system.start_query()
    query.wait_ready()
    with se.client() as c:
        r = c.post(
            "/api/v1/files",
            content=DATA,
            params={"filename": "r.txt"},
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
        fid = r.json()["file_id"]
    token = system.user_token(["user"])
    with httpx.Client(
        base_url=query.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as c:
        url = f"/api/v1/files/{fid}/download"
        assert c.get(url).content == DATA
        r = c.get(url, headers={"Range": f"bytes={BIG}-"})
        assert r.status_code == 416, r.text[:300]
        assert r.json()["error"]["code"] == "INVALID_RANGE"
        r = c.get(url, headers={"Range": f"bytes=-{BIG}"})
        assert r.status_code == 206 and r.content == DATA
