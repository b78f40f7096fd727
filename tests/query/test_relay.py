"""The query module's download relay (common/lean_http.py, RelayResponse) through a whole
system: bodies of many pieces, pooled connections to SEs that restart, a corrupt copy,
a caller that goes away mid-body (issue 7)."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, wait_ready

MiB = 1024 * 1024


class Relay:
    def __init__(self, system: System) -> None:
        self.system = system
        self.a = system.add_se("rw")
        self.b = system.add_se("rw")
        self.query = system.start_query(QM_REGISTRY_POLL_INTERVAL="1", QM_SE_CONNECT_TIMEOUT="1")
        wait_ready(self.query)
        self.token = system.user_token(["user"])
        # Replicas under a taken id come from a service account with storage:write (a
        # chosen id needs it, or an exchanged token's ``act``: issue 13, architecture §10).
        self.replica_token = system.admin.sa_token(["files:write", "storage:write"])

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.query.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )

    def upload(self, ses: list[StorageElementUnderTest], data: bytes) -> str:
        # The first copy is named by its SE (a user chooses no id), the others reuse it.
        fid = ""
        for i, se in enumerate(ses):
            token = self.replica_token if i else self.token
            chosen = {"file_id": fid} if i else {}
            r = httpx.post(
                f"{se.url}/api/v1/files",
                headers={"Authorization": f"Bearer {token}"},
                content=data,
                params={"filename": "big.bin", **chosen},
                timeout=60,
            )
            assert r.status_code == 201, r.text
            fid = str(r.json()["file_id"])
        return fid


@pytest.fixture(scope="module")
def relay(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Relay]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_relay")
    system = System(tmp_path_factory.mktemp("relay"), db)
    try:
        yield Relay(system)
    finally:
        system.stop()
        db.drop()


def _blob_of(se: StorageElementUnderTest, data: bytes) -> Any:
    digest = hashlib.sha256(data).digest()
    for blob in se.blobs():
        if blob.stat().st_size != len(data):
            continue
        if hashlib.sha256(blob.read_bytes()).digest() == digest:
            return blob
    raise AssertionError("blob not found")


def test_many_piece_bodies_ranges_and_repeated_downloads(relay: Relay) -> None:
    data = os.urandom(7 * MiB + 123)
    fid = relay.upload([relay.a], data)
    url = f"/api/v1/files/{fid}/download"
    with relay.client() as c:
        for _ in range(5):  # pooled connections to the SE are reused and stay sound
            r = c.get(url)
            assert r.status_code == 200 and r.content == data
            assert r.headers["content-length"] == str(len(data))
            assert r.headers["x-artstore-storage-element"] == relay.a.id
        part = c.get(url, headers={"Range": f"bytes={3 * MiB - 5}-{5 * MiB}"})
        assert part.status_code == 206 and part.content == data[3 * MiB - 5 : 5 * MiB + 1]
        with c.stream("GET", url) as s:  # a slow reader: the relay's flow control
            got = b"".join(s.iter_bytes(4096))
        assert got == data
        small = relay.upload([relay.a], b"")
        r = c.get(f"/api/v1/files/{small}/download")
        assert r.status_code == 200 and r.content == b""


def test_an_se_restart_between_downloads_costs_no_failure(relay: Relay) -> None:
    data = os.urandom(300_000)
    fid = relay.upload([relay.b], data)
    url = f"/api/v1/files/{fid}/download"
    with relay.client() as c:
        assert c.get(url).content == data  # leaves a pooled connection to b
        relay.b.restart()
        for _ in range(3):
            r = c.get(url)
            assert r.status_code == 200 and r.content == data


def test_a_caller_gone_mid_body_leaves_the_relay_sound(relay: Relay) -> None:
    data = os.urandom(20 * MiB)
    fid = relay.upload([relay.a], data)
    host, port = relay.query.url.removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(
                f"GET /api/v1/files/{fid}/download HTTP/1.1\r\nHost: q\r\n"
                f"Authorization: Bearer {relay.token}\r\n\r\n".encode()
            )
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
        # closed after the first piece
    with relay.client() as c:
        r = c.get(f"/api/v1/files/{fid}/download")
        assert r.status_code == 200 and r.content == data
        assert c.get("/health/ready").status_code == 200


@pytest.mark.local_only
def test_a_corrupt_copy_is_cut_short_then_the_other_copy_serves(relay: Relay) -> None:
    data = os.urandom(3 * MiB)
    fid = relay.upload([relay.a, relay.b], data)
    url = f"/api/v1/files/{fid}/download"
    with relay.client() as c:
        served = c.get(url).headers["x-artstore-storage-element"]
        bad = relay.a if served == relay.a.id else relay.b
        blob = _blob_of(bad, data)
        spoiled = bytearray(blob.read_bytes())
        spoiled[-1] ^= 0x01
        blob.write_bytes(bytes(spoiled))
        # The relay's order of copies follows the registry's view of each SE, which a
        # loaded machine can change between two requests: until the spoiled copy answers,
        # the good one must answer whole.
        cut = False
        for _ in range(40):
            with c.stream("GET", url) as r:
                if r.headers["x-artstore-storage-element"] != bad.id:
                    assert r.read() == data
                    time.sleep(0.25)
                    continue
                with pytest.raises(httpx.HTTPError):
                    r.read()  # cut short: never silently bad bytes
                cut = True
                break
        assert cut, "the spoiled copy never answered"
        # The SE quarantined its copy (404 there): the next download uses the other one.
        r = c.get(url)
        assert r.status_code == 200 and r.content == data
        assert r.headers["x-artstore-storage-element"] != bad.id
