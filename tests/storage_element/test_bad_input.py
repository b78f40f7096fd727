"""What a storage element refuses: bad tokens, missing scopes, bad input, too much data."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.issuer import KeyPair, TestIssuer
from tests.support.se import SEBackend, StorageElementUnderTest, sha256_hex

MAX_FILE = 100_000
MAX_CAPACITY = 100_000
STORAGE_NAME = re.compile(r"^[\w-]+_[\w-]+_\d{8}T\d{6}_[0-9a-f]{8}(\.[\w-]+)?$")


# -- helpers -------------------------------------------------------------------------------
def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) <= {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"


def multipart(
    boundary: bytes,
    parts: Iterable[tuple[str, bytes | None, bytes]],
    close: bool = True,
) -> bytes:
    """Parts as (name, filename or None, value); raw bytes, nothing escaped."""
    out = bytearray()
    for name, filename, value in parts:
        disp = b'form-data; name="' + name.encode() + b'"'
        if filename is not None:
            disp += b'; filename="' + filename + b'"'
        out += b"--" + boundary + b"\r\nContent-Disposition: " + disp + b"\r\n"
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + value + b"\r\n"
    if close:
        out += b"--" + boundary + b"--\r\n"
    return bytes(out)


def mp_headers(boundary: bytes) -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}


def chunked(total: int, chunk: int = 10_000) -> Iterator[bytes]:
    """A body of ``total`` bytes sent without Content-Length."""
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield b"c" * n
        sent += n


def state(se: StorageElementUnderTest) -> tuple[list[Path], list[Path], list[str]]:
    return se.blobs(), se.attrs(), se.tmp_entries()


def assert_nothing_kept(
    se: StorageElementUnderTest, before: tuple[list[Path], list[Path], list[str]]
) -> None:
    blobs, attrs, _ = before
    assert state(se) == (blobs, attrs, []), "the refused upload left something behind"
    assert se.orphan_blobs() == []


def info(se: StorageElementUnderTest) -> dict[str, Any]:
    r = httpx.get(f"{se.url}/api/v1/info", timeout=10)
    assert r.status_code == 200
    return dict(r.json())


def raw_upload(
    c: httpx.Client,
    data: Any,
    name: str = "f.bin",
    headers: dict[str, str] | None = None,
    **params: Any,
) -> httpx.Response:
    return c.post(
        "/api/v1/files",
        content=data,
        params={"filename": name, **params},
        headers={"Content-Type": "application/octet-stream", **(headers or {})},
    )


# -- fixtures ------------------------------------------------------------------------------
class SEs:
    def __init__(
        self, root: Path, issuer: TestIssuer, database_url: str, backend: SEBackend
    ) -> None:
        self.root = root
        # Small file limit; everything else default.
        self.main = StorageElementUnderTest(
            root, issuer, database_url, "rw", {"SE_MAX_FILE_SIZE": str(MAX_FILE)}, backend
        )
        # Small capacity; an edit SE, so ttl_days and delete can be tried too.
        self.small = StorageElementUnderTest(
            root, issuer, database_url, "edit", {"SE_MAX_CAPACITY": str(MAX_CAPACITY)}, backend
        )
        # Never given a token before the JWKS test.
        self.fresh = StorageElementUnderTest(root, issuer, database_url, "rw", None, backend)
        self.all = (self.main, self.small, self.fresh)


@pytest.fixture(scope="module")
def ses(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: TestIssuer,
    database: TestDatabase,
    se_backend: SEBackend,
) -> Iterator[SEs]:
    s = SEs(tmp_path_factory.mktemp("bad_input"), issuer, database.url, se_backend)
    try:
        for se in s.all:
            se.process.start(wait=False)
        for se in s.all:
            se.process.wait_ready(timeout=120)  # several start at once
        yield s
    finally:
        for se in s.all:
            se.process.stop()


@pytest.fixture(scope="module")
def main(ses: SEs) -> StorageElementUnderTest:
    return ses.main


@pytest.fixture(scope="module")
def small(ses: SEs) -> StorageElementUnderTest:
    return ses.small


@pytest.fixture(scope="module")
def existing(main: StorageElementUnderTest) -> dict[str, Any]:
    with main.client() as c:
        r = raw_upload(c, b"existing file", "existing.txt")
        assert r.status_code == 201, r.text
        return dict(r.json())


@pytest.fixture
def client(main: StorageElementUnderTest) -> Iterator[httpx.Client]:
    with main.client() as c:
        yield c


# -- authentication ------------------------------------------------------------------------
def _hs256_with_public_key(issuer: TestIssuer) -> str:
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": issuer.key.kid}, issuer.claims())
    mac = hmac.new(issuer.key.public_pem.encode(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{b64url(mac.digest())}"


TOKENS: dict[str, Callable[[TestIssuer], str]] = {
    "expired": lambda i: i.token(ttl=-30),
    "not_yet_valid": lambda i: i.token(nbf=int(time.time()) + 600),
    "other_key_same_kid": lambda i: i.token(key=KeyPair(kid=i.key.kid)),
    "other_key_unknown_kid": lambda i: i.token(key=KeyPair()),
    "alg_none": lambda i: (
        unsigned({"alg": "none", "typ": "JWT", "kid": i.key.kid}, i.claims()) + "."
    ),
    "hs256_public_key": _hs256_with_public_key,
    "wrong_audience": lambda i: i.token(aud="someone-else"),
    "wrong_issuer": lambda i: i.token(iss="https://evil.example"),
    "garbage": lambda i: "garbage",
    "three_garbage_parts": lambda i: "abc.def.ghi",
    "empty_sub": lambda i: i.token(sub=""),
}


def test_no_token_is_401(
    client: httpx.Client, main: StorageElementUnderTest, existing: dict[str, Any]
) -> None:
    with main.client(scopes="") as anon:
        for method, path in [
            ("GET", "/api/v1/files"),
            ("GET", f"/api/v1/files/{existing['file_id']}"),
            ("GET", f"/api/v1/files/{existing['file_id']}/download"),
            ("POST", "/api/v1/files"),
        ]:
            r = anon.request(method, path, content=b"x" if method == "POST" else None)
            assert_error(r, 401, "UNAUTHORIZED")
            assert r.headers["www-authenticate"].startswith("Bearer"), r.headers
        r = anon.get("/api/v1/files", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
        assert_error(r, 401, "UNAUTHORIZED")
        assert r.headers["www-authenticate"].startswith("Bearer")
    # The same request with a token works: the 401 was about the token.
    assert client.get("/api/v1/files").status_code == 200


@pytest.mark.parametrize("case", sorted(TOKENS))
def test_bad_token_is_401(
    main: StorageElementUnderTest, issuer: TestIssuer, existing: dict[str, Any], case: str
) -> None:
    token = TOKENS[case](issuer)
    before = state(main)
    with httpx.Client(
        base_url=main.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        for r in (
            c.get("/api/v1/files"),
            c.get(f"/api/v1/files/{existing['file_id']}/download"),
            raw_upload(c, b"sneaky", "sneaky.txt"),
        ):
            assert_error(r, 401, "UNAUTHORIZED")
            assert r.headers["www-authenticate"].startswith("Bearer")
    assert_nothing_kept(main, before)


def test_jwks_unavailable_fails_closed(ses: SEs, issuer: TestIssuer) -> None:
    fresh = ses.fresh
    token = issuer.token()
    headers = {"Authorization": f"Bearer {token}"}
    issuer.available = False
    try:
        r = httpx.get(f"{fresh.url}/api/v1/files", headers=headers, timeout=30)
        assert_error(r, 401, "UNAUTHORIZED")
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = httpx.post(
            f"{fresh.url}/api/v1/files",
            headers=headers,
            content=b"x",
            params={"filename": "x"},
            timeout=30,
        )
        assert_error(r, 401, "UNAUTHORIZED")
        assert fresh.blobs() == []
    finally:
        issuer.available = True
    # Once the key set is back the same token is accepted.
    r = httpx.get(f"{fresh.url}/api/v1/files", headers=headers, timeout=30)
    assert r.status_code == 200, r.text


def test_missing_scope_is_403(
    main: StorageElementUnderTest, small: StorageElementUnderTest, existing: dict[str, Any]
) -> None:
    fid = existing["file_id"]
    before = state(main)
    with main.client(scopes="files:read storage:write") as c:
        assert_error(raw_upload(c, b"no", "no.txt"), 403, "FORBIDDEN")
        assert_error(c.post("/api/v1/files", files={"file": ("no.txt", b"no")}), 403, "FORBIDDEN")
        assert_error(c.patch(f"/api/v1/files/{fid}", json={"description": "x"}), 403, "FORBIDDEN")
    assert_nothing_kept(main, before)
    with main.client(scopes="files:write files:delete storage:read") as c:
        assert_error(c.get(f"/api/v1/files/{fid}/download"), 403, "FORBIDDEN")
        assert c.head(f"/api/v1/files/{fid}/download").status_code == 403
        assert_error(c.get("/api/v1/files"), 403, "FORBIDDEN")
        assert_error(c.get(f"/api/v1/files/{fid}"), 403, "FORBIDDEN")
    with main.client(scopes="files:* admin files") as c:  # unknown scopes grant nothing
        assert_error(c.get("/api/v1/files"), 403, "FORBIDDEN")
    # Delete on an edit SE: refused without files:delete, done with it.
    with small.client() as c:
        r = raw_upload(c, b"to delete", "del.txt")
        assert r.status_code == 201, r.text
        victim = r.json()["file_id"]
    with small.client(scopes="files:read files:write") as c:
        assert_error(c.delete(f"/api/v1/files/{victim}"), 403, "FORBIDDEN")
        assert c.get(f"/api/v1/files/{victim}").json()["status"] == "active"
    with small.client(scopes="files:delete files:read") as c:
        assert c.delete(f"/api/v1/files/{victim}").status_code == 204
        assert c.get(f"/api/v1/files/{victim}").json()["status"] == "deleted"


def test_open_endpoints_need_no_token(main: StorageElementUnderTest) -> None:
    with main.client(scopes="") as anon:
        r = anon.get("/api/v1/info")
        assert r.status_code == 200 and r.json()["storage_id"] == main.id
        live = anon.get("/health/live")
        assert live.status_code == 200
        assert live.json()["status"] == "ok"
        ready = anon.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] in ("ok", "degraded")
        # A bad token does not spoil an endpoint that needs none.
        r = anon.get("/api/v1/info", headers={"Authorization": "Bearer garbage"})
        assert r.status_code == 200


# -- file names ----------------------------------------------------------------------------
def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and p.suffix != ".log"}


def _check_clean_name(name: str) -> None:
    assert name not in ("", ".", "..")
    assert "/" not in name and "\\" not in name
    assert all(unicodedata.category(ch)[0] != "C" for ch in name), repr(name)


# Path components are dropped (the last one is kept); the rest must stay inside files/.
RAW_NAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/abs/x.txt",
    "..",
    "x/../../../y.txt",
    "dir/",
]
MULTIPART_NAMES = [
    b"../../etc/passwd",
    b"..\\..\\boot.ini",
    b"../",
]
# Control characters are refused (architecture §10), never stripped: see test_hostile_text.py.
REFUSED_RAW_NAMES = ["a\x00b\r\n.txt", "\x1b[31mred\x07.txt", "a\x85b.txt"]
REFUSED_MULTIPART_NAMES = [b"a\x00b\x01\x7f.txt", b"a\tb\x1f.txt", b"bad\xff\xfe.txt"]


@pytest.mark.parametrize(
    ("how", "name"),
    [("raw", n) for n in REFUSED_RAW_NAMES] + [("multipart", n) for n in REFUSED_MULTIPART_NAMES],
)
def test_filename_with_control_characters_is_400(
    main: StorageElementUnderTest, how: str, name: str | bytes
) -> None:
    before = state(main)
    with main.client() as c:
        if how == "raw":
            r = raw_upload(c, b"refused name", str(name))
        else:
            assert isinstance(name, bytes)
            boundary = uuid.uuid4().hex.encode()
            r = c.post(
                "/api/v1/files",
                content=multipart(boundary, [("file", name, b"refused name")]),
                headers=mp_headers(boundary),
            )
    error = assert_error(r, 400, "VALIDATION_ERROR")
    assert error["error"]["details"]["field"] == "filename"
    assert_nothing_kept(main, before)


@pytest.mark.parametrize(
    ("how", "name"),
    [("raw", n) for n in RAW_NAMES] + [("multipart", n) for n in MULTIPART_NAMES],
)
@pytest.mark.local_only  # inspects where the files landed on disk
def test_hostile_filename_is_neutralised(
    ses: SEs, main: StorageElementUnderTest, how: str, name: str | bytes
) -> None:
    data = b"hostile name " + uuid.uuid4().bytes
    before = _files_under(ses.root)
    with main.client() as c:
        if how == "raw":
            r = raw_upload(c, data, str(name))
        else:
            assert isinstance(name, bytes)
            boundary = uuid.uuid4().hex.encode()
            r = c.post(
                "/api/v1/files",
                content=multipart(boundary, [("file", name, data)]),
                headers=mp_headers(boundary),
            )
        assert r.status_code == 201, r.text
        meta = r.json()
        _check_clean_name(meta["original_filename"])
        d = c.get(f"/api/v1/files/{meta['file_id']}/download")
        assert d.status_code == 200 and d.content == data
        disposition = d.headers["content-disposition"]
        assert "\r" not in disposition and "\n" not in disposition
    new = _files_under(ses.root) - before
    files_dir = main.data_dir / "files"
    wal_dir = main.data_dir / "wal"
    outside = [p for p in new if not (p.is_relative_to(files_dir) or p.is_relative_to(wal_dir))]
    assert outside == [], outside
    new_files = sorted(p for p in new if p.is_relative_to(files_dir))
    assert len(new_files) == 2, new_files  # the blob and its attr
    blob, attr = new_files
    assert attr.name == blob.name + ".attr.json"
    assert len(blob.relative_to(files_dir).parts) == 5  # YYYY/MM/DD/HH/name
    assert STORAGE_NAME.match(blob.name), blob.name
    assert len(blob.name.encode()) <= 200
    _check_clean_name(blob.name)
    stored = json.loads(attr.read_text())
    assert stored["storage_path"] == blob.relative_to(files_dir).as_posix()
    assert os.path.realpath(blob).startswith(os.path.realpath(files_dir) + os.sep)
    assert main.tmp_entries() == []


# -- oversized metadata --------------------------------------------------------------------
def _too_large_requests(boundary: bytes) -> list[dict[str, Any]]:
    tag = "t" * 100
    return [
        {"params": {"filename": "a.txt", "description": "d" * 5000}, "content": b"data"},
        {
            "params": {"filename": "a.txt", "metadata": json.dumps({"k": "v" * 5000})},
            "content": b"data",
        },
        {
            "content": multipart(
                boundary,
                [("file", b"a.txt", b"data")]
                + [("tags", None, f"{tag}{i}".encode()) for i in range(300)],
            ),
            "headers": mp_headers(boundary),
        },
        {
            "content": multipart(
                boundary, [("description", None, b"d" * 5000), ("file", b"a.txt", b"data")]
            ),
            "headers": mp_headers(boundary),
        },
        {
            "content": multipart(
                boundary, [("description", None, b"d" * 9000), ("file", b"a.txt", b"data")]
            ),
            "headers": mp_headers(boundary),
        },
        # Fields after the file part are only known once the file was received.
        {
            "content": multipart(
                boundary, [("file", b"a.txt", b"data" * 1000), ("description", None, b"d" * 5000)]
            ),
            "headers": mp_headers(boundary),
        },
    ]


@pytest.mark.parametrize("case", range(6))
def test_oversized_attr_is_413(
    main: StorageElementUnderTest, client: httpx.Client, case: int
) -> None:
    boundary = uuid.uuid4().hex.encode()
    req = _too_large_requests(boundary)[case]
    before = state(main)
    r = client.post("/api/v1/files", **req)
    assert_error(r, 413, "ATTR_TOO_LARGE")
    assert_nothing_kept(main, before)


def test_oversized_attr_on_patch_is_413(client: httpx.Client, existing: dict[str, Any]) -> None:
    fid = existing["file_id"]
    version = client.get(f"/api/v1/files/{fid}").json()["version"]
    r = client.patch(f"/api/v1/files/{fid}", json={"tags": ["t" * 100] * 60})
    assert_error(r, 413, "ATTR_TOO_LARGE")
    assert client.get(f"/api/v1/files/{fid}").json()["version"] == version


# -- bad fields ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tags", "[1,"),
        ("tags", "[1,2]"),
        ("tags", '[""]'),
        ("tags", '["ok", null]'),
        ("metadata", "{x"),
        ("metadata", "[1]"),
        ("metadata", '{"a":1}'),
        ("metadata", '{"a":{"b":"c"}}'),
        ("metadata", '"text"'),
        ("metadata", "null"),
        ("retention_policy", "forever"),
        ("file_id", "not-a-uuid"),
        ("ttl_days", "0"),
        ("ttl_days", "4000"),
        ("ttl_days", "abc"),
        ("ttl_days", "-1"),
        ("ttl_days", "1.5"),
    ],
)
@pytest.mark.parametrize("how", ["raw", "multipart"])
def test_bad_field_is_400(small: StorageElementUnderTest, how: str, field: str, value: str) -> None:
    """On an edit SE, where ttl_days in range is accepted (see the test below)."""
    before = state(small)
    with small.client() as c:
        if how == "raw":
            r = c.post("/api/v1/files", content=b"data", params={"filename": "x", field: value})
        else:
            boundary = uuid.uuid4().hex.encode()
            parts = [(field, None, value.encode()), ("file", b"x", b"data")]
            r = c.post(
                "/api/v1/files", content=multipart(boundary, parts), headers=mp_headers(boundary)
            )
    error = assert_error(r, 400, "VALIDATION_ERROR")
    assert field in json.dumps(error)
    assert_nothing_kept(small, before)


@pytest.mark.parametrize("ttl", ["1", "3650"])
def test_ttl_days_limits_accepted(small: StorageElementUnderTest, ttl: str) -> None:
    with small.client() as c:
        r = raw_upload(c, b"ttl", "ttl.txt", ttl_days=ttl)
        assert r.status_code == 201, r.text
        assert r.json()["ttl_days"] == int(ttl)


# -- checksums -----------------------------------------------------------------------------
DATA = b"checksummed content\n" * 50


def _digest(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Checksum-SHA256": sha256_hex(b"other")},
        {"X-Checksum-SHA256": sha256_hex(DATA).upper()[:-1] + "0"},
        {"Content-Digest": _digest(b"other")},
        {"Content-Digest": f"sha-512=:AAAA:, {_digest(b'other')}"},
    ],
)
@pytest.mark.parametrize("how", ["raw", "multipart"])
def test_checksum_mismatch_is_422(
    main: StorageElementUnderTest, client: httpx.Client, headers: dict[str, str], how: str
) -> None:
    before = state(main)
    if how == "raw":
        r = raw_upload(client, DATA, "sum.txt", headers=headers)
    else:
        r = client.post("/api/v1/files", files={"file": ("sum.txt", DATA)}, headers=headers)
    assert_error(r, 422, "CHECKSUM_MISMATCH")
    assert_nothing_kept(main, before)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Digest": _digest(DATA)},
        {"Content-Digest": f"sha-512=:AAAA:, {_digest(DATA)}"},
        {"X-Checksum-SHA256": sha256_hex(DATA)},
        {"X-Checksum-SHA256": sha256_hex(DATA).upper()},
    ],
)
def test_matching_checksum_is_201(client: httpx.Client, headers: dict[str, str]) -> None:
    r = raw_upload(client, DATA, "sum.txt", headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["checksum"] == f"sha256:{sha256_hex(DATA)}"
    r = client.post("/api/v1/files", files={"file": ("sum.txt", DATA)}, headers=headers)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Checksum-SHA256": "xyz"},
        {"X-Checksum-SHA256": sha256_hex(DATA) + "00"},
        {"Content-Digest": "sha-256=abc"},
        {"Content-Digest": "sha-256=:!!!notbase64:"},
        {"Content-Digest": "sha-256=:AAAA:"},
    ],
)
def test_malformed_checksum_header_is_400(
    main: StorageElementUnderTest, client: httpx.Client, headers: dict[str, str]
) -> None:
    before = state(main)
    assert_error(raw_upload(client, DATA, "sum.txt", headers=headers), 400, "VALIDATION_ERROR")
    assert_nothing_kept(main, before)


# -- size limits ---------------------------------------------------------------------------
def test_file_at_size_limit_is_accepted(client: httpx.Client) -> None:
    data = os.urandom(MAX_FILE)
    r = raw_upload(client, data, "limit.bin")
    assert r.status_code == 201, r.text
    assert r.json()["size"] == MAX_FILE
    r = client.post("/api/v1/files", content=chunked(MAX_FILE), params={"filename": "l.bin"})
    assert r.status_code == 201, r.text
    assert r.json()["size"] == MAX_FILE


def test_file_too_large_announced_is_413(
    main: StorageElementUnderTest, client: httpx.Client
) -> None:
    before = state(main)
    r = raw_upload(client, b"x" * (MAX_FILE + 1), "big.bin")
    assert_error(r, 413, "FILE_TOO_LARGE")
    assert_nothing_kept(main, before)


@pytest.mark.parametrize("how", ["raw", "multipart"])
def test_file_too_large_mid_stream_is_413(
    main: StorageElementUnderTest, client: httpx.Client, how: str
) -> None:
    before = state(main)
    if how == "raw":
        body: Iterator[bytes] = chunked(MAX_FILE + 50_000)
        headers = {"Content-Type": "application/octet-stream"}
    else:
        boundary = uuid.uuid4().hex.encode()
        whole = multipart(boundary, [("file", b"big.bin", b"m" * (MAX_FILE + 1))])
        body = (whole[i : i + 10_000] for i in range(0, len(whole), 10_000))
        headers = mp_headers(boundary)
    r = client.post("/api/v1/files", content=body, params={"filename": "big.bin"}, headers=headers)
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "FILE_TOO_LARGE")
    assert_nothing_kept(main, before)


def test_small_capacity(small: StorageElementUnderTest) -> None:
    cap = info(small)["capacity"]
    assert cap["total_bytes"] == MAX_CAPACITY
    assert cap["available_bytes"] <= MAX_CAPACITY - cap["used_bytes"]
    before = state(small)
    with small.client() as c:
        # Announced and larger than the room: refused before a byte is stored.
        r = raw_upload(c, b"x" * (MAX_CAPACITY + 50_000), "full.bin")
        assert_error(r, 507, "STORAGE_FULL")
        assert_nothing_kept(small, before)
        r = c.post("/api/v1/files", files={"file": ("full.bin", b"x" * (MAX_CAPACITY * 3))})
        assert_error(r, 507, "STORAGE_FULL")
        assert_nothing_kept(small, before)
        # Not announced: refused once the body runs past the room.
        r = c.post(
            "/api/v1/files", content=chunked(MAX_CAPACITY + 50_000), params={"filename": "full.bin"}
        )
        assert_error(r, 507, "STORAGE_FULL")
        assert_nothing_kept(small, before)
        # Small files still fit, announced or not, raw or multipart.
        for kw in (
            {"content": b"s" * 1000, "params": {"filename": "s1"}},
            {"content": chunked(1000), "params": {"filename": "s2"}},
            {"files": {"file": ("s3", b"s" * 1000)}},
        ):
            r = c.post("/api/v1/files", **kw)
            assert r.status_code == 201, r.text
            assert r.json()["size"] == 1000
    after = info(small)["capacity"]
    assert after["used_bytes"] <= MAX_CAPACITY
    assert after["file_count"] == cap["file_count"] + 3
    assert small.tmp_entries() == []


def test_upload_filling_capacity_then_full(small: StorageElementUnderTest) -> None:
    room = info(small)["capacity"]["available_bytes"]
    assert room > 10_000
    with small.client() as c:
        # A chunked file that just fits (with room for its attr) is taken.
        r = c.post("/api/v1/files", content=chunked(room - 5_000), params={"filename": "fill"})
        assert r.status_code == 201, r.text
        left = info(small)["capacity"]["available_bytes"]
        assert left < 5_000
        before = state(small)
        r = c.post("/api/v1/files", content=chunked(10_000), params={"filename": "over"})
        assert_error(r, 507, "STORAGE_FULL")
        assert_nothing_kept(small, before)


# -- malformed multipart and ids -----------------------------------------------------------
def test_multipart_without_file_part_is_400(
    main: StorageElementUnderTest, client: httpx.Client
) -> None:
    boundary = uuid.uuid4().hex.encode()
    before = state(main)
    for parts in (
        [("description", None, b"only fields")],
        [],
        [("document", b"x.txt", b"named wrong")],
    ):
        body = multipart(boundary, parts)
        r = client.post("/api/v1/files", content=body, headers=mp_headers(boundary))
        assert_error(r, 400, "VALIDATION_ERROR")
    r = client.post(
        "/api/v1/files", content=b"--x--\r\n", headers={"Content-Type": "multipart/form-data"}
    )
    assert_error(r, 400, "VALIDATION_ERROR")
    assert_nothing_kept(main, before)


@pytest.mark.parametrize("cut", [20, 150, 5_000, -10])
def test_truncated_multipart_is_400(
    main: StorageElementUnderTest, client: httpx.Client, cut: int
) -> None:
    boundary = uuid.uuid4().hex.encode()
    whole = multipart(boundary, [("description", None, b"d"), ("file", b"t.bin", b"t" * 10_000)])
    before = state(main)
    r = client.post("/api/v1/files", content=whole[:cut], headers=mp_headers(boundary))
    assert_error(r, 400, "VALIDATION_ERROR")
    assert_nothing_kept(main, before)


@pytest.mark.parametrize("bad", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
def test_bad_file_id_in_path_is_400(client: httpx.Client, bad: str) -> None:
    assert_error(client.get(f"/api/v1/files/{bad}"), 400, "VALIDATION_ERROR")
    assert_error(client.get(f"/api/v1/files/{bad}/download"), 400, "VALIDATION_ERROR")
    assert_error(
        client.patch(f"/api/v1/files/{bad}", json={"description": "x"}), 400, "VALIDATION_ERROR"
    )
    assert_error(client.delete(f"/api/v1/files/{bad}"), 400, "VALIDATION_ERROR")


def test_unknown_file_is_404(client: httpx.Client, small: StorageElementUnderTest) -> None:
    fid = str(uuid.uuid4())
    assert_error(client.get(f"/api/v1/files/{fid}"), 404, "NOT_FOUND")
    assert_error(client.get(f"/api/v1/files/{fid}/download"), 404, "NOT_FOUND")
    assert client.head(f"/api/v1/files/{fid}/download").status_code == 404
    assert_error(client.patch(f"/api/v1/files/{fid}", json={"description": "x"}), 404, "NOT_FOUND")
    with small.client() as c:  # delete is allowed on an edit SE
        assert_error(c.delete(f"/api/v1/files/{fid}"), 404, "NOT_FOUND")
