"""Resumable uploads (tus 1.0) through the ingester, partial data kept by the SE."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.ingester.conftest import client, se_bytes, se_meta
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


@dataclass
class Setup:
    edit: StorageElementUnderTest
    rw1: StorageElementUnderTest
    rw2: StorageElementUnderTest
    ingester: ServiceProcess


@pytest.fixture(scope="module")
def setup(system: System) -> Iterator[Setup]:
    edit = system.add_se("edit")
    rw1, rw2 = system.add_se("rw"), system.add_se("rw")
    yield Setup(edit, rw1, rw2, system.start_ingester(IG_REPLICAS="2"))


def metadata(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def create(c: httpx.Client, length: int, **meta: str) -> str:
    r = c.post(
        "/api/v1/uploads",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(**meta)},
    )
    assert r.status_code == 201, r.text
    assert r.headers["tus-resumable"] == "1.0.0"
    assert "upload-expires" in r.headers
    return urlsplit(r.headers["location"]).path


def offset(c: httpx.Client, path: str) -> int:
    r = c.head(path, headers=TUS)
    assert r.status_code == 200, r.status_code
    assert r.headers["cache-control"] == "no-store"
    return int(r.headers["upload-offset"])


def patch(c: httpx.Client, path: str, at: int, data: bytes, **headers: str) -> httpx.Response:
    return c.patch(path, content=data, headers={**OCTETS, "Upload-Offset": str(at), **headers})


def session_dirs(se: StorageElementUnderTest) -> list[str]:
    root = se.data_dir / "uploads"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def cut_patch(url: str, path: str, token: str, at: int, data: bytes, announced: int) -> None:
    """A PATCH whose client vanishes mid-body (announces more than it sends)."""
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port)) as s:
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: {at}\r\nContent-Length: {announced}\r\n\r\n"
        )
        s.sendall(head.encode() + data)


def test_options_lists_the_extensions(setup: Setup) -> None:
    r = httpx.options(f"{setup.ingester.url}/api/v1/uploads")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0"
    assert set(r.headers["tus-extension"].split(",")) == {
        "creation", "creation-with-upload", "termination", "checksum", "expiration",
    }  # fmt: skip
    assert set(r.headers["tus-checksum-algorithm"].split(",")) == {"sha1", "md5", "sha256"}


def test_interrupted_upload_survives_ingester_and_se_restarts(
    setup: Setup, user_token: str
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 123)
    pieces = [data[i : i + 800_000] for i in range(0, len(data), 800_000)]
    ig = setup.ingester
    with client(ig, user_token) as c:
        path = create(c, len(data), filename="resumed.bin", filetype="application/x-demo",
                      tags='["tus"]', description="in pieces")  # fmt: skip
        assert offset(c, path) == 0
        assert patch(c, path, 0, pieces[0]).status_code == 204
    # Interruption 1: a client that dies mid-PATCH; what reached the SE's disk is kept.
    cut_patch(ig.url, path, user_token, len(pieces[0]), pieces[1][:300_000], len(pieces[1]))
    ig.stop()  # interruption 2: the ingester restarts between chunks
    ig.start()
    with client(ig, user_token) as c:
        sent = offset(c, path)  # the SE answers once the cut PATCH has ended
        assert len(pieces[0]) <= sent <= len(pieces[0]) + 300_000
        end = len(pieces[0]) + len(pieces[1])
        r = patch(c, path, sent, data[sent:end])
        assert r.status_code == 204, r.text
        sent = end
        assert int(r.headers["upload-offset"]) == sent
    setup.edit.restart()  # interruption 3: the SE holding the session restarts
    with client(ig, user_token) as c:
        assert offset(c, path) == sent
        r = patch(c, path, sent, pieces[2])
        assert r.status_code == 204, r.text
        sent += len(pieces[2])
    ig.stop()  # and the ingester once more
    ig.start()
    with client(ig, user_token) as c:
        assert offset(c, path) == sent
        for piece in pieces[3:]:
            r = patch(c, path, sent, piece)
            assert r.status_code == 204, r.text
            sent += len(piece)
        file_id = r.headers["x-file-id"]
        assert int(r.headers["upload-offset"]) == len(data)
        assert offset(c, path) == len(data)  # a finished upload keeps answering HEAD
    meta = se_meta(setup.edit, file_id)
    assert meta is not None
    assert meta["original_filename"] == "resumed.bin" and meta["tags"] == ["tus"]
    assert meta["content_type"] == "application/x-demo" and meta["description"] == "in pieces"
    assert meta["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert se_bytes(setup.edit, file_id) == data
    assert file_id not in session_dirs(setup.edit)


def test_permanent_tus_upload_gets_its_replicas(setup: Setup, user_token: str) -> None:
    data = os.urandom(200_000)
    with client(setup.ingester, user_token) as c:
        path = create(c, len(data), filename="p.bin", retention_policy="permanent")
        r = patch(c, path, 0, data)
    assert r.status_code == 204, r.text
    file_id = r.headers["x-file-id"]
    assert se_bytes(setup.rw1, file_id) == data and se_bytes(setup.rw2, file_id) == data


def test_checksum_extension(setup: Setup, user_token: str) -> None:
    data = os.urandom(100_000)
    good = "sha256 " + base64.b64encode(hashlib.sha256(data[:60_000]).digest()).decode()
    bad = "sha256 " + base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with client(setup.ingester, user_token) as c:
        path = create(c, len(data), filename="c.bin")
        r = patch(c, path, 0, data[:60_000], **{"Upload-Checksum": bad})
        assert r.status_code == 460 and r.json()["error"]["code"] == "CHECKSUM_MISMATCH"
        assert offset(c, path) == 0
        r = patch(c, path, 0, data[:60_000], **{"Upload-Checksum": "md5 AAAA"})
        assert r.status_code == 400, r.text  # not the length of an MD5
        r = patch(c, path, 0, data[:60_000], **{"Upload-Checksum": "crc32 AAAAAA=="})
        assert r.status_code == 400, r.text
        r = patch(c, path, 0, data[:60_000], **{"Upload-Checksum": good})
        assert r.status_code == 204 and r.headers["upload-offset"] == "60000"
        r = patch(c, path, 60_000, data[60_000:])
        assert r.status_code == 204, r.text
    assert se_bytes(setup.edit, r.headers["x-file-id"]) == data


def test_whole_file_checksum_in_metadata(setup: Setup, user_token: str) -> None:
    data = os.urandom(5000)
    with client(setup.ingester, user_token) as c:
        path = create(c, len(data), filename="w.bin", checksum="0" * 64)
        r = patch(c, path, 0, data)
    assert r.status_code == 422 and r.json()["error"]["code"] == "CHECKSUM_MISMATCH"


def test_protocol_errors(setup: Setup, user_token: str) -> None:
    with client(setup.ingester, user_token) as c:
        path = create(c, 10, filename="e.bin")
        assert patch(c, path, 5, b"abc").status_code == 409  # wrong offset
        r = c.patch(path, content=b"abc", headers={**TUS, "Upload-Offset": "0"})
        assert r.status_code == 415
        r = c.patch(path, content=b"abc", headers={**OCTETS, "Tus-Resumable": "0.2.2",
                                                   "Upload-Offset": "0"})  # fmt: skip
        assert r.status_code == 412 and r.headers["tus-version"] == "1.0.0"
        assert patch(c, path, 0, b"x" * 11).status_code == 400  # past Upload-Length
        assert offset(c, path) == 0
        r = c.post("/api/v1/uploads", headers={**TUS, "Upload-Defer-Length": "1"})
        assert r.status_code == 400
        r = c.post("/api/v1/uploads", headers={**TUS, "Upload-Length": str(20 * 1024**3)})
        assert r.status_code == 413
    with client(setup.ingester, None) as c:
        assert c.head(path, headers=TUS).status_code == 401


def test_someone_elses_upload_is_not_yours(setup: Setup, system: System, user_token: str) -> None:
    with client(setup.ingester, user_token) as c:
        path = create(c, 10, filename="mine.bin")
    with client(setup.ingester, system.user_token(["user"])) as other:
        assert patch(other, path, 0, b"0123456789").status_code == 403
    with client(setup.ingester, user_token) as c:
        assert offset(c, path) == 0


def test_termination(setup: Setup, user_token: str) -> None:
    with client(setup.ingester, user_token) as c:
        path = create(c, 1000, filename="t.bin")
        assert patch(c, path, 0, b"x" * 500).status_code == 204
        file_id = path.rsplit("/", 1)[1]
        assert file_id in session_dirs(setup.edit)
        r = c.delete(path, headers=TUS)
        assert r.status_code == 204 and r.headers["tus-resumable"] == "1.0.0"
        assert c.head(path, headers=TUS).status_code == 404
        assert patch(c, path, 500, b"x" * 500).status_code == 404
    assert file_id not in session_dirs(setup.edit)
    assert se_meta(setup.edit, file_id) is None


def test_expiration(setup: Setup, system: System, user_token: str) -> None:
    short = system.start_ingester(IG_UPLOAD_EXPIRY="1")
    with client(short, user_token) as c:
        path = create(c, 1000, filename="x.bin")
        r = patch(c, path, 0, b"x" * 10)
        assert r.status_code == 204
        expires = r.headers["upload-expires"]
        assert expires.endswith("GMT")
        file_id = path.rsplit("/", 1)[1]
        time.sleep(1.2)  # the session's own lifetime, not a readiness wait
        r = patch(c, path, 10, b"x" * 10)
        assert r.status_code == 410, r.text
        assert c.head(path, headers=TUS).status_code == 404
    assert file_id not in session_dirs(setup.edit)
    short.stop()
