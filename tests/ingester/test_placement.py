"""Placement: full SEs are passed over, unreachable ones too, and clear errors when
nothing can take a file."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import pytest

from tests.ingester.conftest import client
from tests.support.system import System


@pytest.fixture(autouse=True)
def own_ses(system: System) -> Iterator[None]:
    """Each test places among the SEs it adds: whatever it leaves registered is removed,
    also when it fails."""
    known = len(system.ses)
    yield
    for se in system.ses[known:]:
        with contextlib.suppress(AssertionError):
            system.unregister(se)
        se.process.stop()


def _put(ig_url: str, token: str, data: bytes, **params: str) -> tuple[int, dict[str, object]]:
    import httpx

    r = httpx.put(
        f"{ig_url}/api/v1/files/upload",
        params={"filename": "f.bin", **params},
        content=data,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    return r.status_code, r.json()


def test_fill_first_fills_one_se_then_moves_on(system: System, user_token: str) -> None:
    # Room for two files each (blob + attr): the third file must move to the other SE.
    ses = [system.add_se("edit", SE_MAX_CAPACITY="6000") for _ in range(2)]
    first, second = sorted(ses, key=lambda se: se.id)
    ig = system.start_ingester(IG_PLACEMENT="fill_first")
    placed = []
    for _ in range(4):
        status, body = _put(ig.url, user_token, os.urandom(1800))
        assert status == 201, body
        placed.append(body["storage_element_id"])
    assert placed == [first.id, first.id, second.id, second.id]
    status, body = _put(ig.url, user_token, os.urandom(1800))
    assert status == 507, body
    ig.stop()
    for se in ses:
        system.unregister(se)
        se.process.stop()


def test_most_free_spreads_files(system: System, user_token: str) -> None:
    # Both SEs share one filesystem, so their room must come from SE_MAX_CAPACITY for
    # "most free" to tell them apart.
    ses = [system.add_se("edit", SE_MAX_CAPACITY="10000000") for _ in range(2)]
    ig = system.start_ingester()  # most_free is the default
    placed = set()
    for _ in range(2):
        status, body = _put(ig.url, user_token, os.urandom(200_000))
        assert status == 201, body
        placed.add(body["storage_element_id"])
    assert placed == {se.id for se in ses}
    ig.stop()
    for se in ses:
        system.unregister(se)
        se.process.stop()


def test_no_room_is_507_and_nothing_online_is_503(system: System, user_token: str) -> None:
    tiny = system.add_se("rw", SE_MAX_CAPACITY="3000")
    ig = system.start_ingester()
    status, body = _put(ig.url, user_token, os.urandom(5000), retention_policy="permanent")
    assert status == 507, body
    assert body["error"]["code"] == "STORAGE_FULL"  # type: ignore[index]
    tiny.process.stop()
    status, body = _put(ig.url, user_token, b"x", retention_policy="permanent")
    assert status == 503, body
    assert body["error"]["code"] == "NO_STORAGE_AVAILABLE"  # type: ignore[index]
    ig.stop()
    system.unregister(tiny)


def test_unreachable_se_is_skipped(system: System, user_token: str) -> None:
    a, b = system.add_se("edit"), system.add_se("edit")
    ig = system.start_ingester()
    a.process.kill()  # the registry still lists it online for a while
    with client(ig, user_token) as c:
        for _ in range(3):
            r = c.put("/api/v1/files/upload", params={"filename": "u"}, content=b"data")
            assert r.status_code == 201, r.text
            assert r.json()["storage_element_id"] == b.id
    b.process.kill()
    with client(ig, user_token) as c:
        r = c.put("/api/v1/files/upload", params={"filename": "u"}, content=b"data")
    assert r.status_code == 503 and r.json()["error"]["code"] == "NO_STORAGE_AVAILABLE"
    ig.stop()
    for se in (a, b):
        system.unregister(se)


def test_one_rw_se_takes_a_permanent_file_alone(system: System, user_token: str) -> None:
    # IG_REPLICAS defaults to 2, but with one rw SE online the policy is one copy
    # (under-replicated: the job worker adds the second when another rw SE appears).
    rw = system.add_se("rw")
    ig = system.start_ingester()
    status, body = _put(ig.url, user_token, b"abc", retention_policy="permanent")
    assert status == 201, body
    assert [c["storage_element_id"] for c in body["copies"]] == [rw.id]  # type: ignore[union-attr]
    assert len(rw.attrs()) == 1
    # A temporary file needs an edit SE, and there is none.
    status, body = _put(ig.url, user_token, b"abc")
    assert status == 503, body
    # A second rw SE: the default now writes two copies.
    rw2 = system.add_se("rw")
    deadline = time.monotonic() + 20  # the ingester re-reads the registry every second
    while True:
        status, body = _put(ig.url, user_token, b"two", retention_policy="permanent")
        assert status == 201, body
        copies = {c["storage_element_id"] for c in body["copies"]}  # type: ignore[union-attr]
        if len(copies) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert copies == {rw.id, rw2.id}
    ig.stop()
    for se in (rw, rw2):
        system.unregister(se)
        se.process.stop()


def test_se_full_behind_the_ingesters_back_507_then_the_next_se(
    system: System, user_token: str
) -> None:
    # The ingester reads room in the background (here: not again for 10 minutes), so
    # it believes the first SE has room; that SE's 507 sends the file to the next one.
    ses = [system.add_se("edit", SE_MAX_CAPACITY="8000") for _ in range(2)]
    first, second = sorted(ses, key=lambda se: se.id)
    ig = system.start_ingester(IG_PLACEMENT="fill_first", IG_CAPACITY_REFRESH_INTERVAL="600")
    with first.client() as c:
        r = c.post("/api/v1/files", params={"filename": "fill.bin"}, content=os.urandom(5000))
    assert r.status_code == 201, r.text
    for _ in range(2):
        status, body = _put(ig.url, user_token, os.urandom(3000))
        assert status == 201, body
        assert body["storage_element_id"] == second.id
    assert len(first.attrs()) == 1  # only the file written directly
    assert len(second.attrs()) == 2
    ig.stop()
