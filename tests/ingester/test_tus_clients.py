"""tus as clients nobody here wrote expect it (issue 17): tuspy with its checksum option
(SHA-1), resuming after a PATCH cut mid-body, creation-with-upload, the method override,
and ``Tus-Resumable`` on every answer, errors included."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from tests.ingester.conftest import client, se_bytes
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System

pytestmark = pytest.mark.process

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


@dataclass
class Setup:
    edit: StorageElementUnderTest
    ingester: ServiceProcess


@pytest.fixture(scope="module")
def setup(system: System) -> Iterator[Setup]:
    edit = system.add_se("edit")
    yield Setup(edit, system.start_ingester())


def _tus(setup: Setup, token: str) -> TusClient:
    return TusClient(
        f"{setup.ingester.url}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"}
    )


def _checksum(name: str, data: bytes) -> str:
    return f"{name} {base64.b64encode(hashlib.new(name, data).digest()).decode()}"


def _create(c: httpx.Client, length: int, body: bytes = b"", **headers: str) -> httpx.Response:
    extra = {"Content-Type": "application/offset+octet-stream"} if body else {}
    return c.post(
        "/api/v1/uploads",
        content=body,
        headers={**TUS, "Upload-Length": str(length), **extra, **headers},
    )


def _offset(c: httpx.Client, path: str) -> int:
    r = c.head(path, headers=TUS)
    assert r.status_code == 200, r.status_code
    return int(r.headers["upload-offset"])


def test_tuspy_uploads_with_its_sha1_checksum(setup: Setup, user_token: str) -> None:
    data = os.urandom(700_000)
    uploader = _tus(setup, user_token).uploader(
        file_stream=io.BytesIO(data),
        chunk_size=256 * 1024,
        metadata={"filename": "tuspy.bin", "filetype": "application/x-demo"},
        upload_checksum=True,  # tuspy's algorithm is SHA-1
    )
    assert uploader.checksum_algorithm_name == "sha1"
    uploader.upload()
    assert uploader.offset == len(data)
    file_id = uploader.request.response_headers["x-file-id"]
    assert se_bytes(setup.edit, file_id) == data


def test_a_wrong_sha1_or_md5_is_460_and_nothing_is_kept(setup: Setup, user_token: str) -> None:
    data = os.urandom(50_000)
    with client(setup.ingester, user_token) as c:
        path = urlsplit(_create(c, len(data)).headers["location"]).path
        for name in ("sha1", "md5", "sha256"):
            r = c.patch(
                path,
                content=data,
                headers={**OCTETS, "Upload-Offset": "0",
                         "Upload-Checksum": _checksum(name, b"not these bytes")},
            )  # fmt: skip
            assert r.status_code == 460, r.text
            assert r.headers["tus-resumable"] == "1.0.0"
            assert _offset(c, path) == 0
        r = c.patch(
            path,
            content=data,
            headers={**OCTETS, "Upload-Offset": "0", "Upload-Checksum": _checksum("md5", data)},
        )
        assert r.status_code == 204, r.text
        assert se_bytes(setup.edit, r.headers["x-file-id"]) == data


def _stalled_patch(
    setup: Setup, token: str, path: str, data: bytes, announced: int
) -> socket.socket:
    """One PATCH carrying the whole file, as tus-js-client sends it, that stops sending
    once the SE has written part of it to disk (the caller closes it, or keeps it hung)."""
    u = urlsplit(setup.ingester.url)
    session_data = setup.edit.data_dir / "uploads" / path.rsplit("/", 1)[1] / "data"
    s = socket.create_connection((str(u.hostname), int(u.port or 80)))
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: 0\r\nContent-Length: {announced}\r\n\r\n"
    )
    s.sendall(head.encode() + data)
    deadline = time.monotonic() + 60
    while session_data.stat().st_size < 2 * 1024 * 1024:
        assert time.monotonic() < deadline, "the bytes never reached the SE"
        time.sleep(0.02)
    return s


def test_tuspy_resumes_where_an_interrupted_patch_stopped(setup: Setup, user_token: str) -> None:
    data = os.urandom(6 * 1024 * 1024 + 17)
    tus = _tus(setup, user_token)
    first = tus.uploader(file_stream=io.BytesIO(data), metadata={"filename": "cut.bin"})
    url = first.create_url()
    path = urlsplit(url).path
    # The client dies with its PATCH unfinished (its socket closes).
    _stalled_patch(setup, user_token, path, data[: 3 * 1024 * 1024], len(data)).close()
    # A new client resumes from the upload's URL: its HEAD says what was kept.
    resumed = tus.uploader(file_stream=io.BytesIO(data), url=url, upload_checksum=True)
    assert 2 * 1024 * 1024 <= resumed.offset <= 3 * 1024 * 1024
    resumed.upload()
    assert resumed.offset == len(data)
    file_id = resumed.request.response_headers["x-file-id"]
    assert se_bytes(setup.edit, file_id) == data


def test_tuspy_resumes_past_a_hung_patch(setup: Setup, user_token: str) -> None:
    """The connection of the first PATCH hangs without closing (a phone that changed
    networks): resuming takes the upload over, from what the hung PATCH brought."""
    data = os.urandom(6 * 1024 * 1024 + 5)
    tus = _tus(setup, user_token)
    url = tus.uploader(file_stream=io.BytesIO(data), metadata={"filename": "hung.bin"}).create_url()
    hung = _stalled_patch(setup, user_token, urlsplit(url).path, data[: 3 * 1024 * 1024], len(data))
    with hung:
        resumed = tus.uploader(file_stream=io.BytesIO(data), url=url)
        assert 2 * 1024 * 1024 <= resumed.offset <= 3 * 1024 * 1024
        resumed.upload()
        assert resumed.offset == len(data)
    assert se_bytes(setup.edit, resumed.request.response_headers["x-file-id"]) == data


def test_creation_with_upload(setup: Setup, user_token: str) -> None:
    data = os.urandom(120_000)
    with client(setup.ingester, user_token) as c:
        whole = _create(c, len(data), data, **{"Upload-Checksum": _checksum("sha1", data)})
        assert whole.status_code == 201, whole.text
        assert whole.headers["upload-offset"] == str(len(data))
        assert se_bytes(setup.edit, whole.headers["x-file-id"]) == data
        part = _create(c, len(data), data[:50_000])
        assert part.status_code == 201, part.text
        assert part.headers["upload-offset"] == "50000"
        path = urlsplit(part.headers["location"]).path
        assert _offset(c, path) == 50_000
        r = c.patch(path, content=data[50_000:], headers={**OCTETS, "Upload-Offset": "50000"})
        assert r.status_code == 204, r.text
        assert se_bytes(setup.edit, r.headers["x-file-id"]) == data
        # A body that fails its checksum: the upload exists (Location), holding nothing.
        bad = _create(c, len(data), data, **{"Upload-Checksum": _checksum("sha1", b"x")})
        assert bad.status_code == 460, bad.text
        assert bad.headers["tus-resumable"] == "1.0.0"
        assert _offset(c, urlsplit(bad.headers["location"]).path) == 0
        wrong_type = c.post(
            "/api/v1/uploads",
            content=b"abc",
            headers={**TUS, "Upload-Length": "3", "Content-Type": "text/plain"},
        )
        assert wrong_type.status_code == 415


def test_method_override(setup: Setup, user_token: str) -> None:
    data = os.urandom(10_000)
    with client(setup.ingester, user_token) as c:
        path = urlsplit(_create(c, len(data)).headers["location"]).path
        r = c.post(
            path,
            content=data[:4000],
            headers={**OCTETS, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"},
        )
        assert r.status_code == 204, r.text
        assert r.headers["upload-offset"] == "4000"
        head = c.post(path, headers={**TUS, "X-HTTP-Method-Override": "HEAD"})
        assert head.status_code == 200 and head.headers["upload-offset"] == "4000"
        assert head.content == b""
        not_a_tus_method = c.post(path, headers={**TUS, "X-HTTP-Method-Override": "GET"})
        assert not_a_tus_method.status_code == 405
        gone = c.post(path, headers={**TUS, "X-HTTP-Method-Override": "delete"})
        assert gone.status_code == 204, gone.text
        assert c.head(path, headers=TUS).status_code == 404


def test_every_answer_carries_tus_resumable(setup: Setup, user_token: str) -> None:
    with client(setup.ingester, user_token) as c:
        path = urlsplit(_create(c, 10).headers["location"]).path
        answers = {
            "wrong offset": c.patch(path, content=b"abc", headers={**OCTETS, "Upload-Offset": "5"}),
            "wrong type": c.patch(path, content=b"abc", headers={**TUS, "Upload-Offset": "0"}),
            "old version": c.head(path, headers={"Tus-Resumable": "0.2.2"}),
            "unknown SE": c.head("/api/v1/uploads/nowhere/" + path.rsplit("/", 1)[1], headers=TUS),
            "not a uuid": c.head("/api/v1/uploads/x/y", headers=TUS),
            "too large": c.post(
                "/api/v1/uploads", headers={**TUS, "Upload-Length": str(20 * 1024**3)}
            ),
            "no such method": c.put(path, headers=TUS),
        }
    with client(setup.ingester, None) as anonymous:
        answers["no token"] = anonymous.head(path, headers=TUS)
    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == {
        "wrong offset": 409, "wrong type": 415, "old version": 412, "unknown SE": 404,
        "not a uuid": 400, "too large": 413, "no such method": 405, "no token": 401,
    }  # fmt: skip
    for name, r in answers.items():
        assert r.headers.get("tus-resumable") == "1.0.0", name
    # Only the tus URLs speak tus.
    assert "tus-resumable" not in httpx.get(f"{setup.ingester.url}/health/live").headers


def test_tuspy_reports_a_refused_upload(setup: Setup) -> None:
    """A client without a token is told so (not a hang, not a bare error)."""
    uploader = TusClient(f"{setup.ingester.url}/api/v1/uploads").uploader(
        file_stream=io.BytesIO(b"abc"), metadata={"filename": "a.bin"}
    )
    with pytest.raises(TusCommunicationError) as caught:
        uploader.upload()
    assert caught.value.status_code == 401
