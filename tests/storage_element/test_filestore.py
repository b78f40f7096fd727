"""Issue 11, items 4-6, against a running storage element: one id is stored once (the
FileStore's atomic claim, never-overwriting publish), hung-up uploads give back what they
reserved, and a mode transition drains the uploads admitted before it."""

from __future__ import annotations

import http.client
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.conftest import SEFactory
from tests.support.se import StorageElementUnderTest, sha256_hex

GiB = 1024**3
WAIT_SECONDS = 30.0


def _available(se: StorageElementUnderTest) -> int:
    r = httpx.get(f"{se.url}/api/v1/info", timeout=10)
    assert r.status_code == 200, r.text
    return int(r.json()["capacity"]["available_bytes"])


def _wait_available(se: StorageElementUnderTest, ok: Any, what: str) -> int:
    """Poll the SE's room until ``ok(available)``: the observable effect of a request."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        room = _available(se)
        if ok(room):
            return room
        assert time.monotonic() < deadline, f"{what}: available_bytes stayed {room}"
        time.sleep(0.02)


def _open_upload(
    se: StorageElementUnderTest, length: int, first: bytes
) -> http.client.HTTPConnection:
    """A raw upload announcing ``length`` bytes, of which only ``first`` is sent so far."""
    url = urlsplit(se.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    conn.putrequest("POST", "/api/v1/files?filename=slow.bin")
    conn.putheader("Authorization", f"Bearer {se.issuer.token('files:read files:write')}")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    conn.send(first)
    return conn


def test_concurrent_uploads_of_one_id_store_it_once(se_factory: SEFactory) -> None:
    se = se_factory("rw")
    file_id = str(uuid.uuid4())
    bodies = [os.urandom(1000 + i) for i in range(16)]
    start = threading.Barrier(len(bodies))

    def upload(i: int) -> httpx.Response:
        with se.client() as c:
            start.wait()
            # Same name for half of them: same storage name too, where only the
            # never-overwriting publish could tell them apart.
            name = "same.bin" if i % 2 else f"f{i}.bin"
            return c.post(
                "/api/v1/files",
                content=bodies[i],
                params={"filename": name, "file_id": file_id},
            )

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(upload, range(len(bodies))))

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 15, [r.text for r in answers]
    won = next(i for i, r in enumerate(answers) if r.status_code == 201)
    assert answers[won].json()["checksum"] == f"sha256:{sha256_hex(bodies[won])}"
    with se.client() as c:
        meta = c.get(f"/api/v1/files/{file_id}").json()
        assert meta["checksum"] == f"sha256:{sha256_hex(bodies[won])}"
        assert c.get(f"/api/v1/files/{file_id}/download").content == bodies[won]
    assert len(se.attrs()) == 1 and len(se.blobs()) == 1
    assert se.tmp_entries() == []


def test_hung_up_uploads_give_back_their_reservations(se_factory: SEFactory) -> None:
    # Room for one 10 GiB upload at a time: a leaked reservation shows at once.
    se = se_factory("rw", SE_MAX_CAPACITY=str(15 * GiB))
    before = _available(se)
    assert before >= 10 * GiB
    for _ in range(50):
        conn = _open_upload(se, 10 * GiB, b"x" * 1000)
        _wait_available(se, lambda room: room <= before - 10 * GiB, "reserved")
        conn.close()  # hang up
        _wait_available(se, lambda room: room == before, "released")
    with se.client() as c:
        r = c.post("/api/v1/files", content=b"after", params={"filename": "after.txt"})
        assert r.status_code == 201, r.text
    assert se.tmp_entries() == []


def test_a_mode_transition_drains_uploads_in_flight(se_factory: SEFactory) -> None:
    # A capacity below the free disk space: the room seen is exact, not the disk's.
    se = se_factory("rw", SE_MAX_CAPACITY=str(10 * GiB))
    body = os.urandom(256 * 1024)
    before = _available(se)
    conn = _open_upload(se, len(body), body[:1000])
    try:
        # Admitted under rw: its announced size is reserved.
        _wait_available(se, lambda room: room <= before - len(body), "admitted")
        with se.client() as c:
            r = c.post("/api/v1/mode/transition", json={"target_mode": "ro"})
            assert r.status_code == 200, r.text
        conn.send(body[1000:])
        answer = conn.getresponse()
        status, text = answer.status, answer.read().decode()
    finally:
        conn.close()
    assert status == 409, text
    assert '"MODE_NOT_ALLOWED"' in text
    with se.client() as c:
        assert c.get("/api/v1/files").json()["total"] == 0
    assert se.attrs() == [] and se.blobs() == [] and se.tmp_entries() == []
    _wait_available(se, lambda room: room == before, "released")
