"""``StorageElementClient`` maps what a real SE answers to our errors (issue 14): every
SE error code of architecture §3 becomes its class in ``artstore.common.errors``
(and a ``Relayed`` with the SE's status and code); 5xx is our 502; an SE that refuses
the connection or never answers is ``Unreachable`` (502), on both HTTP clients."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

import httpx
import pytest

from artstore.common.errors import (
    ArtStoreError,
    AttrTooLarge,
    ChecksumMismatch,
    ConfirmationRequired,
    Conflict,
    FileGone,
    FileTooLarge,
    Forbidden,
    InvalidRange,
    InvalidTransition,
    ModeNotAllowed,
    NotFound,
    StorageFull,
    Unauthorized,
    UpstreamUnavailable,
    ValidationFailed,
)
from artstore.common.lean_http import UpstreamClient
from artstore.common.se_client import Relayed, StorageElementClient, Unreachable, bearer
from artstore.contracts.files import FileMetadata
from tests.conftest import SEFactory
from tests.support.issuer import TestIssuer
from tests.support.process import free_port


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _raised(call: Awaitable[Any]) -> ArtStoreError:
    with pytest.raises(ArtStoreError) as caught:
        await call
    return caught.value


def _relayed(err: ArtStoreError, cls: type[ArtStoreError], status: int, code: str) -> None:
    """``err`` is the SE's answer relayed as ``cls`` with the SE's status and code."""
    assert isinstance(err, Relayed), repr(err)
    assert isinstance(err, cls), repr(err)
    assert (err.status, err.code) == (status, code), (err.status, err.code, err.message)
    assert err.message


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


async def test_edit_se_answers_map_to_their_errors(
    se_factory: SEFactory, issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    se = se_factory("edit", SE_MAX_FILE_SIZE="4096", SE_MAX_BODY_BYTES="2048").url
    c = StorageElementClient(http)
    auth = bearer(issuer.token())
    raw = {**auth, "Content-Type": "application/octet-stream"}

    stored = await c.upload(se, [("filename", "a.txt")], raw, _body(b"hello"))
    assert isinstance(stored, FileMetadata) and stored.original_filename == "a.txt"
    fid = stored.file_id
    meta = await c.get_file(se, fid, auth)
    assert meta == stored and meta.size == 5
    assert await c.get_file(se, str(uuid.uuid4()), auth) is None  # 404: no copy here
    changed = await c.patch_file(se, fid, auth, {"description": "one"})
    assert changed.description == "one" and changed.file_id == fid
    assert await _drain(c.download(se, fid, auth, extra={"Range": "bytes=1-2"})) == b"el"
    status = await c.maintenance(se, "status", auth)
    assert isinstance(status, dict) and status

    bad_field = [("filename", "a.txt"), ("retention_policy", "forever")]
    _relayed(await _raised(c.upload(se, bad_field, raw, _body(b"x"))),
             ValidationFailed, 400, "VALIDATION_ERROR")  # fmt: skip
    err = await _raised(c.get_file(se, fid, bearer("not-a-token")))
    _relayed(err, Unauthorized, 401, "UNAUTHORIZED")
    assert err.headers is not None and err.headers["WWW-Authenticate"].startswith("Bearer")
    _relayed(await _raised(c.get_file(se, fid, bearer(issuer.token("files:write")))),
             Forbidden, 403, "FORBIDDEN")  # fmt: skip
    _relayed(await _raised(c.patch_file(se, str(uuid.uuid4()), auth, {"description": "d"})),
             NotFound, 404, "NOT_FOUND")  # fmt: skip
    session = await c.create_session(se, {"length": 10, "filename": "s.bin"}, auth)
    _relayed(await _raised(c.complete_session(se, str(session["session_id"]), auth)),
             Conflict, 409, "CONFLICT")  # fmt: skip
    _relayed(await _raised(c.upload(se, [("filename", "big")], raw, _body(b"x" * 5000))),
             FileTooLarge, 413, "FILE_TOO_LARGE")  # fmt: skip
    long_text = [("filename", "a.txt"), ("description", "d" * 5000)]
    _relayed(await _raised(c.upload(se, long_text, raw, _body(b"x"))),
             AttrTooLarge, 413, "ATTR_TOO_LARGE")  # fmt: skip
    # Codes our hierarchy has no class for stay a Relayed with the SE's status and code.
    err = await _raised(c.patch_file(se, fid, auth, {"description": "d" * 3000}))
    assert isinstance(err, Relayed) and (err.status, err.code) == (413, "BODY_TOO_LARGE")
    assert not isinstance(err, FileTooLarge)
    err = await _raised(c.get_file(se, fid, {**auth, "X-Pad": "p" * 1_000_000}))
    assert isinstance(err, Relayed) and (err.status, err.code) == (431, "HEADERS_TOO_LARGE")
    far = {"Range": "bytes=100-200"}
    err = await _raised(_drain(c.download(se, fid, auth, extra=far)))
    _relayed(err, InvalidRange, 416, "INVALID_RANGE")
    wrong = {**raw, "X-Checksum-SHA256": "0" * 64}
    _relayed(await _raised(c.upload(se, [("filename", "c")], wrong, _body(b"abc"))),
             ChecksumMismatch, 422, "CHECKSUM_MISMATCH")  # fmt: skip

    assert await c.delete_file(se, fid, auth) == 204
    _relayed(await _raised(c.delete_file(se, fid, auth, accept=(204,))),
             FileGone, 410, "FILE_GONE")  # fmt: skip
    assert await c.delete_file(se, fid, auth) == 410  # a tombstone already: accepted


async def _drain(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_mode_answers_map_to_their_errors(
    se_factory: SEFactory, issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    se = se_factory("rw").url
    c = StorageElementClient(http)
    auth = bearer(issuer.token())
    raw = {**auth, "Content-Type": "application/octet-stream"}
    info = await c.info(se)
    assert info.mode == "rw" and "delete" not in info.allowed_operations
    stored = await c.upload(
        se, [("filename", "p"), ("retention_policy", "permanent")], raw, _body(b"p")
    )
    _relayed(await _raised(c.delete_file(se, stored.file_id, auth)),
             ModeNotAllowed, 409, "MODE_NOT_ALLOWED")  # fmt: skip
    _relayed(await _raised(c.transition_mode(se, {"target_mode": "edit"}, auth)),
             InvalidTransition, 409, "INVALID_TRANSITION")  # fmt: skip
    assert (await c.transition_mode(se, {"target_mode": "ro"}, auth))["current_mode"] == "ro"
    _relayed(await _raised(c.transition_mode(se, {"target_mode": "rw"}, auth)),
             ConfirmationRequired, 409, "CONFIRMATION_REQUIRED")  # fmt: skip
    assert (await c.info(se)).mode == "ro"


async def test_no_room_is_storage_full_on_both_clients(
    se_factory: SEFactory, issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    se = se_factory("edit", SE_MAX_CAPACITY="2048").url
    lean = UpstreamClient(timeout=30, connect_timeout=5)
    raw = {**bearer(issuer.token()), "Content-Type": "application/octet-stream"}
    try:
        for c in (StorageElementClient(http), StorageElementClient(http, lean)):
            err = await _raised(c.upload(se, [("filename", "f")], raw, _body(b"x" * 4000)))
            _relayed(err, StorageFull, 507, "STORAGE_FULL")
    finally:
        await lean.aclose()


async def _error_for(status: int, content: bytes) -> ArtStoreError:
    """What the client makes of an SE answering ``status`` with ``content``."""

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as h:
        return await _raised(StorageElementClient(h).get_file("http://se.test", "f", {}))


async def test_5xx_and_codes_the_se_never_sends_here() -> None:
    # Answers a healthy SE does not give on demand (a journal that failed, a proxy in
    # front of it), from a stand-in HTTP answer.
    journal = b'{"error": {"code": "SERVICE_UNAVAILABLE", "message": "journal failed"}}'
    err = await _error_for(503, journal)
    assert type(err) is UpstreamUnavailable and err.status == 502
    assert err.details == {"url": "http://se.test", "status": 503}
    assert "journal failed" in err.message
    err = await _error_for(500, b"<html>oops</html>")
    assert type(err) is UpstreamUnavailable and err.status == 502
    err = await _error_for(429, b'{"error": {"code": "RATE_LIMITED", "message": "slow down"}}')
    assert isinstance(err, Relayed) and (err.status, err.code) == (429, "RATE_LIMITED")
    err = await _error_for(400, b"not json")
    assert isinstance(err, Relayed) and (err.status, err.code) == (400, "UPSTREAM_ERROR")
    assert not isinstance(err, ValidationFailed)


async def test_a_file_answer_of_another_shape_is_unreachable() -> None:
    # A 200/201 that is not a file's metadata is not an SE's answer (a proxy's page, an
    # SE of another version): UPSTREAM_UNAVAILABLE, never a 500.
    def handler(request: httpx.Request) -> httpx.Response:
        status = 201 if request.method == "POST" else 200
        return httpx.Response(status, json={"file_id": "f", "size": "many"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as h:
        c = StorageElementClient(h)
        url = "http://se.test"
        for call in (
            c.get_file(url, "f", {}),
            c.upload(url, [], {}, _body(b"x")),
            c.patch_file(url, "f", {}, {"description": "d"}),
            c.complete_session(url, "s", {}),
        ):
            err = await _raised(call)
            assert isinstance(err, Unreachable) and err.reason == "ValidationError"
            assert err.status == 502 and err.details == {"url": url}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        yield int(srv.getsockname()[1])


async def test_refused_and_silent_ses_are_unreachable(silent_port: int) -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    silent = f"http://127.0.0.1:{silent_port}"
    lean = UpstreamClient(timeout=0.5, connect_timeout=0.5)
    quick = httpx.AsyncClient(timeout=httpx.Timeout(0.5))
    try:
        for c in (StorageElementClient(quick), StorageElementClient(quick, lean)):
            for url in (refused, silent):
                calls: list[Awaitable[Any]] = [
                    c.get_file(url, "f", {}),
                    c.upload(url, [], {}, _body(b"x")),
                    c.open_download(url, "f", "GET", {}),
                    c.create_session(url, {}, {}),
                    c.transition_mode(url, {}, {}),
                    _drain(c.download(url, "f", {})),
                ]
                for call in calls:
                    err = await _raised(call)
                    assert isinstance(err, Unreachable), (url, repr(err))
                    assert err.status == 502 and err.code == "UPSTREAM_UNAVAILABLE"
                    assert err.details == {"url": url}
                err = await _raised(c.info(url))
                assert isinstance(err, UpstreamUnavailable) and err.details == {"url": url}
                assert await c.ready(url) is None
    finally:
        await lean.aclose()
        await quick.aclose()
