"""The client's retry, renewal and resume logic against a small loopback HTTP server
whose answers each test scripts (503s, dropped connections, Range, wrong bytes)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from artstore.client import (
    AsyncClient,
    ChecksumMismatchError,
    Client,
    ClientConfig,
    RetryPolicy,
    ServiceConnectionError,
    ServiceUnavailableError,
)
from artstore.client.files import UploadOptions
from tests.support.process import free_port

Handler = Callable[[BaseHTTPRequestHandler, int], None]
FAST = RetryPolicy(retries=3, backoff=0.01, max_backoff=0.05)


class Loopback:
    """Each request is passed to ``handle(request, n)`` (n counts from 0); every request
    line and its headers are kept in ``seen``."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                n = len(outer.seen)
                outer.seen.append((self.command, self.path, dict(self.headers.items())))
                outer.handle(self, n)

            do_GET = do_POST = do_PUT = do_HEAD = do_PATCH = _any

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[Callable[[Handler], Loopback]]:
    made: list[Loopback] = []

    def make(handle: Handler) -> Loopback:
        made.append(Loopback(handle))
        return made[-1]

    yield make
    for srv in made:
        srv.close()


def reply(req: BaseHTTPRequestHandler, status: int, body: Any = None, **headers: str) -> None:
    data = b"" if body is None else json.dumps(body).encode()
    req.send_response(status)
    for k, v in headers.items():
        req.send_header(k.replace("_", "-"), v)
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(data)))
    req.send_header("Connection", "close")  # an unread request body must not be reused
    req.close_connection = True
    req.end_headers()
    req.wfile.write(data)


def envelope(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def client_for(srv: Loopback, **kw: Any) -> Client:
    return Client(ClientConfig(admin_url=srv.url, ingester_url=srv.url, query_url=srv.url,
                               token="t", retry=FAST, **kw))  # fmt: skip


PAGE = {"items": [], "total": 0, "limit": 100, "offset": 0, "has_more": False}


def test_get_is_retried_on_503(loopback: Callable[[Handler], Loopback]) -> None:
    def handle(req: BaseHTTPRequestHandler, n: int) -> None:
        if n < 2:
            reply(req, 503, envelope("SERVICE_UNAVAILABLE", "db down"), Retry_After="0")
        else:
            reply(req, 200, PAGE)

    srv = loopback(handle)
    with client_for(srv) as c:
        assert c.list_users().total == 0
    assert len(srv.seen) == 3


def test_503_gives_up_with_the_servers_error(loopback: Callable[[Handler], Loopback]) -> None:
    srv = loopback(lambda req, n: reply(req, 503, envelope("NO_STORAGE_AVAILABLE", "none")))
    with client_for(srv) as c, pytest.raises(ServiceUnavailableError) as err:
        c.list_users()
    assert err.value.code == "NO_STORAGE_AVAILABLE" and err.value.status == 503
    assert len(srv.seen) == 4  # the first try and three retries


def test_non_idempotent_requests_are_not_retried_on_503(
    loopback: Callable[[Handler], Loopback], tmp_path: Path
) -> None:
    srv = loopback(lambda req, n: reply(req, 503, envelope("NO_STORAGE_AVAILABLE", "none")))
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 10)
    with client_for(srv) as c:
        with pytest.raises(ServiceUnavailableError):
            c.create_user(username="u", password="p" * 12)
        with pytest.raises(ServiceUnavailableError):
            c.upload(f)
    assert [m for m, _, _ in srv.seen] == ["POST", "PUT"]


def test_connection_refused_is_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = ClientConfig(admin_url=url, token="t", retry=FAST)
    with Client(config) as c, pytest.raises(ServiceConnectionError) as err:
        c.list_users()
    assert err.value.code == "CONNECTION_FAILED" and url in err.value.message


def test_401_renews_once_with_the_refresh_token(loopback: Callable[[Handler], Loopback]) -> None:
    saved: list[str] = []

    def handle(req: BaseHTTPRequestHandler, n: int) -> None:
        if req.path == "/api/v1/auth/token":
            length = int(req.headers["Content-Length"])
            assert b"grant_type=refresh_token" in req.rfile.read(length)
            reply(req, 200, {"access_token": "new", "expires_in": 900, "refresh_token": "r2"})
        elif req.headers["Authorization"] == "Bearer new":
            reply(req, 200, PAGE)
        else:
            reply(req, 401, envelope("UNAUTHORIZED", "expired"))

    srv = loopback(handle)
    cfg = ClientConfig(admin_url=srv.url, token="old", refresh_token="r1", retry=FAST)
    with Client(cfg, on_tokens=lambda t: saved.append(t.refresh_token or "")) as c:
        c.list_users()
        assert c.tokens.refresh_token == "r2"
    assert saved == ["r2"]
    paths = [p.split("?")[0] for _, p, _ in srv.seen]
    assert paths == ["/api/v1/users", "/api/v1/auth/token", "/api/v1/users"]


# -- downloads ----------------------------------------------------------------------------
DATA = bytes(range(256)) * 4096  # 1 MiB
ETAG = f'"{hashlib.sha256(DATA).hexdigest()}"'


def serve_file(data: bytes, etag: str, cut_first_at: int | None = None) -> Handler:
    """Serves ``data`` with Range/If-Range; the first GET stops after ``cut_first_at``
    bytes and drops the connection."""

    def handle(req: BaseHTTPRequestHandler, n: int) -> None:
        start = 0
        rng = req.headers.get("Range")
        if rng and req.headers.get("If-Range", etag) == etag:
            start = int(rng.removeprefix("bytes=").split("-")[0])
        body = data[start:]
        req.send_response(206 if start else 200)
        req.send_header("ETag", etag)
        req.send_header("Accept-Ranges", "bytes")
        req.send_header("Content-Length", str(len(body)))
        if start:
            req.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        req.end_headers()
        if n == 0 and cut_first_at is not None:
            req.wfile.write(body[:cut_first_at])
            req.wfile.flush()
            req.close_connection = True
            req.connection.shutdown(2)
            return
        req.wfile.write(body)

    return handle


def test_download_resumes_after_a_dropped_connection(
    loopback: Callable[[Handler], Loopback], tmp_path: Path
) -> None:
    srv = loopback(serve_file(DATA, ETAG, cut_first_at=300_000))
    dest = tmp_path / "f.bin"
    with client_for(srv) as c:
        result = c.download("abc", dest)
    assert dest.read_bytes() == DATA and result.sha256 == ETAG.strip('"')
    assert not dest.with_name("f.bin.part").exists()
    assert not dest.with_name("f.bin.part.json").exists()
    second = srv.seen[1][2]
    assert second["Range"].startswith("bytes=") and int(second["Range"][6:-1]) > 0
    assert second["If-Range"] == ETAG


def test_download_continues_a_part_left_by_an_earlier_run(
    loopback: Callable[[Handler], Loopback], tmp_path: Path
) -> None:
    srv = loopback(serve_file(DATA, ETAG))
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(DATA[:12345])
    dest.with_name("f.bin.part.json").write_text(json.dumps({"file_id": "abc", "etag": ETAG}))
    with client_for(srv) as c:
        result = c.download("abc", dest)
    assert result.resumed_from == 12345 and dest.read_bytes() == DATA
    assert srv.seen[0][2]["Range"] == "bytes=12345-"


def test_a_changed_file_restarts_from_zero(
    loopback: Callable[[Handler], Loopback], tmp_path: Path
) -> None:
    srv = loopback(serve_file(DATA, ETAG))
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(b"old bytes of another version")
    dest.with_name("f.bin.part.json").write_text(json.dumps({"file_id": "abc", "etag": '"x"'}))
    with client_for(srv) as c:
        c.download("abc", dest)  # If-Range does not match: 200 with the whole file
    assert dest.read_bytes() == DATA


def test_bytes_that_do_not_match_the_etag_are_refused(
    loopback: Callable[[Handler], Loopback], tmp_path: Path
) -> None:
    srv = loopback(serve_file(DATA, '"' + "0" * 64 + '"'))
    dest = tmp_path / "f.bin"
    with client_for(srv) as c, pytest.raises(ChecksumMismatchError):
        c.download("abc", dest)
    assert not dest.exists() and not dest.with_name("f.bin.part").exists()


def test_download_gives_up_but_keeps_the_part(
    loopback: Callable[[Handler], Loopback], tmp_path: Path
) -> None:
    def always_cut(req: BaseHTTPRequestHandler, n: int) -> None:
        serve_file(DATA, ETAG, cut_first_at=1000)(req, 0)

    srv = loopback(always_cut)
    dest = tmp_path / "f.bin"
    with client_for(srv) as c, pytest.raises(ServiceConnectionError) as err:
        c.download("abc", dest, max_resumes=2)
    assert "run it again to resume" in err.value.message
    assert dest.with_name("f.bin.part").stat().st_size == 3000  # three tries, 1000 each
    assert not dest.exists()


def test_async_client_retries_and_resumes(
    loopback: Callable[[Handler], Loopback], tmp_path: Path
) -> None:
    file_handler = serve_file(DATA, ETAG, cut_first_at=500_000)

    def handle(req: BaseHTTPRequestHandler, n: int) -> None:
        if req.path.startswith("/api/v1/users"):
            reply(req, 503 if n == 0 else 200, PAGE if n else envelope("X", "busy"))
        else:
            file_handler(req, n - 2)

    srv = loopback(handle)

    async def run() -> None:
        cfg = ClientConfig(admin_url=srv.url, query_url=srv.url, token="t", retry=FAST)
        async with AsyncClient(cfg) as c:
            assert (await c.list_users()).total == 0
            await c.download("abc", tmp_path / "a.bin")

    asyncio.run(run())
    assert (tmp_path / "a.bin").read_bytes() == DATA


def test_upload_streams_and_checks_the_stored_checksum(
    loopback: Callable[[Handler], Loopback], tmp_path: Path
) -> None:
    f = tmp_path / "up.bin"
    f.write_bytes(DATA)
    sizes: list[int] = []

    def handle(req: BaseHTTPRequestHandler, n: int) -> None:
        body = req.rfile.read(int(req.headers["Content-Length"]))
        digest = hashlib.sha256(body if n == 0 else b"corrupted").hexdigest()
        meta = {"file_id": "f1", "original_filename": "up.bin", "size": len(body),
                "checksum": f"sha256:{digest}", "uploaded_at": "2024-01-01T00:00:00Z"}  # fmt: skip
        reply(req, 201, meta)

    srv = loopback(handle)
    with client_for(srv, chunk_size=64 * 1024) as c:
        meta = c.upload(f, UploadOptions(tags=["a", "b"], metadata={"k": "v"}),
                        progress=lambda done, total: sizes.append(done))  # fmt: skip
        assert meta.size == len(DATA)
        with pytest.raises(ChecksumMismatchError):
            c.upload(f)
    method, path, headers = srv.seen[0]
    assert method == "PUT" and "filename=up.bin" in path and "tags=a&tags=b" in path
    assert headers["Content-Length"] == str(len(DATA))
    assert sizes[-1] == len(DATA) and len(sizes) == len(DATA) // (64 * 1024)
