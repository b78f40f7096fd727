"""Uploads, downloads, listing and metadata of one storage element over HTTP (architecture §5.5)."""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.se import SEBackend, StorageElementUnderTest, sha256_hex

MiB = 1024 * 1024
BIG = 50 * MiB
FILE_METADATA_FIELDS = {
    "schema_version",
    "file_id",
    "original_filename",
    "content_type",
    "size",
    "checksum",
    "uploaded_by",
    "uploaded_at",
    "updated_at",
    "version",
    "status",
    "finalized_by",
    "finalized_at",
    "previews",
    "retention_policy",
    "ttl_days",
    "expires_at",
    "description",
    "tags",
    "metadata",
    "storage_element_id",
}


# -- helpers -------------------------------------------------------------------------------
def start_all(*ses: StorageElementUnderTest) -> None:
    """Start several SEs at once and wait until each answers /health/live."""
    for se in ses:
        se.process.start(wait=False)
    for se in ses:
        se.process.wait_ready(timeout=120)  # several start at once


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


_BLOCK = payload(MiB, 7)


def big_chunk(i: int) -> bytes:
    """Chunk ``i`` of the 50 MiB file: each 1 MiB chunk differs from every other one."""
    return i.to_bytes(4, "big") + _BLOCK[4:]


def big_chunks() -> Iterator[bytes]:
    for i in range(BIG // MiB):
        yield big_chunk(i)


def big_slice(start: int, end: int) -> bytes:
    """Bytes ``start..end`` (inclusive) of the 50 MiB file."""
    out = bytearray()
    for i in range(start // MiB, end // MiB + 1):
        out += big_chunk(i)
    base = (start // MiB) * MiB
    return bytes(out[start - base : end - base + 1])


BIG_SHA = hashlib.sha256(b"".join(big_chunks())).hexdigest()


def multipart_stream(
    boundary: str,
    filename: str,
    chunks: Iterable[bytes],
    fields: Iterable[tuple[str, str]] = (),
    content_type: str = "application/octet-stream",
) -> Iterator[bytes]:
    b = boundary.encode()
    for name, value in fields:
        yield (
            b"--"
            + b
            + b'\r\nContent-Disposition: form-data; name="'
            + name.encode()
            + b'"\r\n\r\n'
            + value.encode()
            + b"\r\n"
        )
    yield (
        b"--"
        + b
        + b'\r\nContent-Disposition: form-data; name="file"; filename="'
        + filename.encode()
        + b'"\r\nContent-Type: '
        + content_type.encode()
        + b"\r\n\r\n"
    )
    yield from chunks
    yield b"\r\n--" + b + b"--\r\n"


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def upload(c: httpx.Client, data: bytes, filename: str = "f.bin", **params: Any) -> dict[str, Any]:
    r = c.post(
        "/api/v1/files",
        content=data,
        params={"filename": filename, **params},
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    meta: dict[str, Any] = r.json()
    return meta


def parse_time(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    assert t.utcoffset() == timedelta(0), value
    return t


def stream_sha(c: httpx.Client, url: str) -> tuple[int, str, httpx.Headers]:
    h = hashlib.sha256()
    n = 0
    with c.stream("GET", url) as r:
        assert r.status_code == 200, r.read()
        for chunk in r.iter_bytes():
            h.update(chunk)
            n += len(chunk)
        return n, h.hexdigest(), r.headers


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ses(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: TestIssuer,
    database: TestDatabase,
    se_backend: SEBackend,
) -> Iterator[tuple[StorageElementUnderTest, StorageElementUnderTest]]:
    root = tmp_path_factory.mktemp("transfer")
    rw = StorageElementUnderTest(root, issuer, database.url, "rw", backend=se_backend)
    edit = StorageElementUnderTest(root, issuer, database.url, "edit", backend=se_backend)
    try:
        start_all(rw, edit)
        yield rw, edit
    finally:
        rw.process.stop()
        edit.process.stop()


@pytest.fixture(scope="module")
def rw(ses: tuple[StorageElementUnderTest, StorageElementUnderTest]) -> StorageElementUnderTest:
    return ses[0]


@pytest.fixture(scope="module")
def edit(ses: tuple[StorageElementUnderTest, StorageElementUnderTest]) -> StorageElementUnderTest:
    return ses[1]


@pytest.fixture
def client(rw: StorageElementUnderTest) -> Iterator[httpx.Client]:
    with rw.client() as c:
        yield c


SAMPLE = payload(4096, 1)


@pytest.fixture(scope="module")
def sample(rw: StorageElementUnderTest) -> dict[str, Any]:
    """One 4 KiB file on the rw SE for the download tests."""
    with rw.client() as c:
        return upload(c, SAMPLE, "sample.bin")


def download_url(meta: dict[str, Any]) -> str:
    return f"/api/v1/files/{meta['file_id']}/download"


# -- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 4096])
def test_raw_round_trip(rw: StorageElementUnderTest, client: httpx.Client, size: int) -> None:
    data = payload(size, size + 11)
    r = client.post(
        "/api/v1/files",
        content=data,
        params={"filename": "doc.pdf"},
        headers={"Content-Type": "application/pdf"},
    )
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["size"] == size
    assert meta["checksum"] == f"sha256:{sha256_hex(data)}"
    assert meta["content_type"] == "application/pdf"
    assert meta["original_filename"] == "doc.pdf"
    assert meta["uploaded_by"] == "alice"
    # Location names the new file and leads to its metadata.
    location = r.headers["location"]
    assert urlsplit(urljoin(rw.url, location)).path == f"/api/v1/files/{meta['file_id']}"
    got = client.get(urljoin(rw.url, location))
    assert got.status_code == 200
    assert got.json()["checksum"] == meta["checksum"]

    d = client.get(download_url(meta))
    assert d.status_code == 200
    assert d.content == data
    assert d.headers["etag"] == f'"{sha256_hex(data)}"'
    assert d.headers["content-length"] == str(size)
    assert d.headers["content-type"].startswith("application/pdf")
    assert d.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("size", [0, 4096])
def test_multipart_round_trip(client: httpx.Client, size: int) -> None:
    data = payload(size, size + 12)
    r = client.post(
        "/api/v1/files",
        files={"file": ("notes.txt", data, "text/plain")},
        data={"description": "multi part", "tags": ["a", "b"], "metadata": '{"k": "v"}'},
    )
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["size"] == size
    assert meta["checksum"] == f"sha256:{sha256_hex(data)}"
    assert meta["original_filename"] == "notes.txt"
    assert meta["content_type"] == "text/plain"
    assert meta["description"] == "multi part"
    assert meta["tags"] == ["a", "b"]
    assert meta["metadata"] == {"k": "v"}
    assert r.headers["location"].endswith(f"/api/v1/files/{meta['file_id']}")
    d = client.get(download_url(meta))
    assert d.status_code == 200
    assert d.content == data
    assert d.headers["etag"] == f'"{sha256_hex(data)}"'


def _check_big(c: httpx.Client, meta: dict[str, Any]) -> None:
    assert meta["size"] == BIG
    assert meta["checksum"] == f"sha256:{BIG_SHA}"
    n, sha, headers = stream_sha(c, download_url(meta))
    assert (n, sha) == (BIG, BIG_SHA)
    assert headers["etag"] == f'"{BIG_SHA}"'
    assert headers["content-length"] == str(BIG)
    # A range across a chunk boundary deep inside the file.
    start, end = 17 * MiB - 10, 17 * MiB + 9
    r = c.get(download_url(meta), headers={"Range": f"bytes={start}-{end}"})
    assert r.status_code == 206
    assert r.content == big_slice(start, end)
    assert r.headers["content-range"] == f"bytes {start}-{end}/{BIG}"


def test_50mib_raw_streamed_round_trip(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/files",
        content=big_chunks(),
        params={"filename": "big.bin"},
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(BIG)},
    )
    assert r.status_code == 201, r.text
    _check_big(client, r.json())


def test_50mib_multipart_chunked_round_trip(client: httpx.Client) -> None:
    boundary = uuid.uuid4().hex
    body = multipart_stream(boundary, "big.bin", big_chunks(), [("description", "big one")])
    r = client.post(
        "/api/v1/files",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["description"] == "big one"
    assert meta["original_filename"] == "big.bin"
    _check_big(client, meta)


# -- ranges --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=1000-2047", 1000, 2047),
        ("bytes=-5", 4091, 4095),
        ("bytes=4000-", 4000, 4095),
        ("bytes=4090-999999", 4090, 4095),
        ("bytes=0-0", 0, 0),
        ("bytes=-99999", 0, 4095),
    ],
)
def test_range(
    client: httpx.Client, sample: dict[str, Any], header: str, start: int, end: int
) -> None:
    r = client.get(download_url(sample), headers={"Range": header})
    assert r.status_code == 206, r.text
    assert r.content == SAMPLE[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/4096"
    assert r.headers["content-length"] == str(end - start + 1)
    assert r.headers["etag"] == f'"{sha256_hex(SAMPLE)}"'


@pytest.mark.parametrize("header", ["bytes=4096-", "bytes=5000-6000", "bytes=4096-4100"])
def test_range_start_beyond_end_is_416(
    client: httpx.Client, sample: dict[str, Any], header: str
) -> None:
    r = client.get(download_url(sample), headers={"Range": header})
    assert_error(r, 416, "INVALID_RANGE")
    assert r.headers["content-range"] == "bytes */4096"


def test_range_on_empty_file_is_416(client: httpx.Client) -> None:
    meta = upload(client, b"", "empty.bin")
    r = client.get(download_url(meta), headers={"Range": "bytes=0-"})
    assert_error(r, 416, "INVALID_RANGE")
    assert r.headers["content-range"] == "bytes */0"


def test_head_has_headers_and_no_body(client: httpx.Client, sample: dict[str, Any]) -> None:
    r = client.head(download_url(sample))
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "4096"
    assert r.headers["etag"] == f'"{sha256_hex(SAMPLE)}"'
    assert r.headers["accept-ranges"] == "bytes"
    assert "last-modified" in r.headers
    assert r.headers["content-disposition"].startswith("attachment")


# -- conditional requests ------------------------------------------------------------------
def test_if_none_match(client: httpx.Client, sample: dict[str, Any]) -> None:
    etag = f'"{sha256_hex(SAMPLE)}"'
    url = download_url(sample)
    for value in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        r = client.get(url, headers={"If-None-Match": value})
        assert r.status_code == 304, value
        assert r.content == b""
        assert r.headers["etag"] == etag
    r = client.get(url, headers={"If-None-Match": '"0123"'})
    assert r.status_code == 200
    assert r.content == SAMPLE


def test_if_modified_since(client: httpx.Client, sample: dict[str, Any]) -> None:
    url = download_url(sample)
    last_modified = client.head(url).headers["last-modified"]
    at = parsedate_to_datetime(last_modified)
    assert abs(at - parse_time(sample["uploaded_at"])) < timedelta(seconds=1)
    later = format_datetime(at + timedelta(hours=1), usegmt=True)
    earlier = format_datetime(at - timedelta(hours=1), usegmt=True)
    for value in (last_modified, later):
        r = client.get(url, headers={"If-Modified-Since": value})
        assert r.status_code == 304, value
        assert r.content == b""
    r = client.get(url, headers={"If-Modified-Since": earlier})
    assert r.status_code == 200
    assert r.content == SAMPLE
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    r = client.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": later})
    assert r.status_code == 200
    assert r.content == SAMPLE


def test_if_range(client: httpx.Client, sample: dict[str, Any]) -> None:
    url = download_url(sample)
    etag = f'"{sha256_hex(SAMPLE)}"'
    r = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'})
    assert r.status_code == 200
    assert r.content == SAMPLE
    assert "content-range" not in r.headers
    r = client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert r.status_code == 206
    assert r.content == SAMPLE[:10]
    last_modified = client.head(url).headers["last-modified"]
    r = client.get(url, headers={"Range": "bytes=10-19", "If-Range": last_modified})
    assert r.status_code == 206
    assert r.content == SAMPLE[10:20]
    before = format_datetime(parsedate_to_datetime(last_modified) - timedelta(days=1), usegmt=True)
    r = client.get(url, headers={"Range": "bytes=10-19", "If-Range": before})
    assert r.status_code == 200
    assert r.content == SAMPLE


# -- file names ----------------------------------------------------------------------------
_ATTR_CHAR = re.compile(r"^(?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-Fa-f]{2})*$")


def _disposition(header: str) -> tuple[str, str]:
    """(ASCII fallback, decoded filename*) of a Content-Disposition header."""
    assert header.isascii(), header
    assert header.startswith("attachment"), header
    fallback = re.search(r'(?:^|;)\s*filename="((?:[^"\\]|\\.)*)"', header)
    extended = re.search(r"(?:^|;)\s*filename\*=UTF-8''([^;\s]+)", header, re.IGNORECASE)
    assert fallback and extended, header
    assert _ATTR_CHAR.match(extended.group(1)), header
    return fallback.group(1), unquote(extended.group(1), encoding="utf-8", errors="strict")


@pytest.mark.parametrize(
    ("name", "how"),
    [
        ("отчёт 2026.pdf", "raw"),
        ("отчёт 2026.pdf", "multipart"),
        ("文件.txt", "raw"),
        ("文件.txt", "multipart"),
        # Quotes need the escaped fallback (multipart clients send them as %22, so raw only).
        ('a "quoted" name;.txt', "raw"),
    ],
)
def test_non_ascii_filename_round_trip(
    rw: StorageElementUnderTest, client: httpx.Client, name: str, how: str
) -> None:
    data = b"unicode " + name.encode()
    if how == "raw":
        r = client.post("/api/v1/files", content=data, params={"filename": name})
    else:
        r = client.post("/api/v1/files", files={"file": (name, data, "text/plain")})
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["original_filename"] == name
    assert client.get(f"/api/v1/files/{meta['file_id']}").json()["original_filename"] == name
    d = client.get(download_url(meta))
    assert d.status_code == 200
    assert d.content == data
    fallback, decoded = _disposition(d.headers["content-disposition"])
    assert decoded == name
    assert fallback and fallback.isascii()
    assert all(0x20 <= ord(ch) < 0x7F for ch in fallback)
    # The storage name keeps letters of any script (architecture §5.1).
    stem = re.sub(r"[^\w-]+", "_", name.rsplit(".", 1)[0]).strip("_")
    blob = [b for b in rw.blobs() if meta["file_id"].replace("-", "")[:8] in b.name]
    assert len(blob) == 1
    assert blob[0].name.startswith(f"{stem}_alice_"), blob[0].name


# -- listing -------------------------------------------------------------------------------
def test_list_newest_first_and_pagination(client: httpx.Client) -> None:
    ids = [upload(client, f"list {i}".encode(), f"list{i}.txt")["file_id"] for i in range(3)]
    everything = client.get("/api/v1/files", params={"limit": 1000})
    assert everything.status_code == 200
    page = everything.json()
    total = page["total"]
    assert total >= 3
    assert page["limit"] == 1000 and page["offset"] == 0 and page["has_more"] is False
    assert len(page["items"]) == total
    stamps = [parse_time(i["uploaded_at"]) for i in page["items"]]
    assert stamps == sorted(stamps, reverse=True)

    first = client.get("/api/v1/files", params={"limit": 2}).json()
    assert [i["file_id"] for i in first["items"]] == [ids[2], ids[1]]
    assert (first["total"], first["limit"], first["offset"], first["has_more"]) == (
        total,
        2,
        0,
        True,
    )
    second = client.get("/api/v1/files", params={"limit": 2, "offset": 2}).json()
    assert second["items"][0]["file_id"] == ids[0]
    assert second["offset"] == 2
    last = client.get("/api/v1/files", params={"limit": 2, "offset": total - 1}).json()
    assert len(last["items"]) == 1 and last["has_more"] is False
    beyond = client.get("/api/v1/files", params={"offset": total + 5}).json()
    assert beyond["items"] == [] and beyond["has_more"] is False and beyond["total"] == total
    default = client.get("/api/v1/files").json()
    assert default["limit"] == 100 and default["offset"] == 0
    assert set(default) == {"items", "total", "limit", "offset", "has_more"}


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "abc"}]
)
def test_list_parameters_out_of_range(client: httpx.Client, params: dict[str, Any]) -> None:
    assert_error(client.get("/api/v1/files", params=params), 400, "VALIDATION_ERROR")


def test_list_status_filter_rejects_unknown(client: httpx.Client) -> None:
    assert_error(client.get("/api/v1/files", params={"status": "gone"}), 400, "VALIDATION_ERROR")


# -- metadata ------------------------------------------------------------------------------
def test_metadata_fields(rw: StorageElementUnderTest, client: httpx.Client) -> None:
    meta = upload(
        client, b"fields", "fields.txt", description="d", tags=["x"], metadata='{"a": "1"}'
    )
    r = client.get(f"/api/v1/files/{meta['file_id']}")
    assert r.status_code == 200
    got = r.json()
    assert set(got) == FILE_METADATA_FIELDS
    assert got == meta
    assert got["schema_version"] == 1
    assert uuid.UUID(got["file_id"])
    assert got["storage_element_id"] == rw.id
    assert got["uploaded_by"] == "alice"
    assert got["version"] == 1
    assert got["finalized_by"] is None and got["finalized_at"] is None
    assert got["status"] == "active"
    assert got["size"] == 6
    assert got["description"] == "d" and got["tags"] == ["x"] and got["metadata"] == {"a": "1"}
    assert parse_time(got["uploaded_at"]) == parse_time(got["updated_at"])
    assert abs(parse_time(got["uploaded_at"]) - datetime.now(UTC)) < timedelta(minutes=5)
    # The same shape in lists.
    listed = client.get("/api/v1/files", params={"limit": 1000}).json()["items"]
    assert [i for i in listed if i["file_id"] == meta["file_id"]] == [got]


def test_uploaded_by_is_token_subject(rw: StorageElementUnderTest) -> None:
    with rw.client(sub="bob@example") as c:
        meta = upload(c, b"bob's", "b.txt")
    assert meta["uploaded_by"] == "bob@example"


def test_patch_updates_and_bumps_version(client: httpx.Client) -> None:
    meta = upload(client, b"patch me", "p.txt", description="old", tags=["t1"])
    fid = meta["file_id"]
    r = client.patch(f"/api/v1/files/{fid}", json={"description": "new"})
    assert r.status_code == 200, r.text
    v2 = r.json()
    assert v2["description"] == "new" and v2["tags"] == ["t1"] and v2["version"] == 2
    assert parse_time(v2["updated_at"]) > parse_time(meta["updated_at"])
    assert v2["uploaded_at"] == meta["uploaded_at"]
    r = client.patch(
        f"/api/v1/files/{fid}", json={"tags": ["x", "y"], "metadata": {"owner": "ops"}}
    )
    assert r.status_code == 200, r.text
    v3 = r.json()
    assert (v3["version"], v3["tags"], v3["metadata"], v3["description"]) == (
        3,
        ["x", "y"],
        {"owner": "ops"},
        "new",
    )
    assert v3["checksum"] == meta["checksum"] and v3["size"] == meta["size"]
    got = client.get(f"/api/v1/files/{fid}").json()
    assert got == v3
    assert client.get(download_url(meta)).content == b"patch me"


@pytest.mark.parametrize(
    "body", [{}, {"tags": None}, {"size": 3}, {"metadata": {"a": 1}}, {"tags": "x"}]
)
def test_patch_bad_body_is_400(
    client: httpx.Client, sample: dict[str, Any], body: dict[str, Any]
) -> None:
    r = client.patch(f"/api/v1/files/{sample['file_id']}", json=body)
    assert_error(r, 400, "VALIDATION_ERROR")
    assert client.get(f"/api/v1/files/{sample['file_id']}").json()["version"] == 1


def test_delete_tombstone_on_edit(edit: StorageElementUnderTest) -> None:
    with edit.client() as c:
        meta = upload(c, b"short lived", "gone.txt")
        keep = upload(c, b"stays", "stays.txt")
        fid = meta["file_id"]
        r = c.delete(f"/api/v1/files/{fid}")
        assert r.status_code == 204
        assert r.content == b""
        got = c.get(f"/api/v1/files/{fid}")
        assert got.status_code == 200
        assert got.json()["status"] == "deleted"
        assert got.json()["version"] == 2
        assert_error(c.get(download_url(meta)), 410, "FILE_GONE")
        assert_error(c.delete(f"/api/v1/files/{fid}"), 410, "FILE_GONE")
        listed = [i["file_id"] for i in c.get("/api/v1/files").json()["items"]]
        assert fid not in listed and keep["file_id"] in listed
        deleted = c.get("/api/v1/files", params={"status": "deleted"}).json()
        assert [i["file_id"] for i in deleted["items"]] == [fid]
        assert deleted["items"][0]["status"] == "deleted"
        active = [
            i["file_id"]
            for i in c.get("/api/v1/files", params={"status": "active"}).json()["items"]
        ]
        assert fid not in active and keep["file_id"] in active
        assert c.get(download_url(keep)).content == b"stays"


# -- ids -----------------------------------------------------------------------------------
def test_explicit_file_id_and_reuse_conflict(
    rw: StorageElementUnderTest, client: httpx.Client
) -> None:
    fid = str(uuid.uuid4())
    meta = upload(client, b"first", "first.txt", file_id=fid)
    assert meta["file_id"] == fid
    assert client.get(f"/api/v1/files/{fid}").json()["checksum"] == meta["checksum"]
    blobs, attrs = rw.blobs(), rw.attrs()
    r = client.post("/api/v1/files", content=b"second", params={"filename": "x", "file_id": fid})
    assert_error(r, 409, "CONFLICT")
    r = client.post("/api/v1/files", files={"file": ("x", b"third")}, data={"file_id": fid})
    assert_error(r, 409, "CONFLICT")
    assert (rw.blobs(), rw.attrs(), rw.tmp_entries()) == (blobs, attrs, [])
    assert client.get(download_url(meta)).content == b"first"


# -- retention -----------------------------------------------------------------------------
def test_edit_defaults_to_temporary(edit: StorageElementUnderTest) -> None:
    with edit.client() as c:
        meta = upload(c, b"temp", "t.txt")
        assert meta["retention_policy"] == "temporary"
        assert meta["ttl_days"] == 30
        expires = parse_time(meta["expires_at"])
        assert expires - parse_time(meta["uploaded_at"]) == timedelta(days=30)
        seven = upload(c, b"temp7", "t7.txt", ttl_days=7)
        assert seven["ttl_days"] == 7
        assert parse_time(seven["expires_at"]) - parse_time(seven["uploaded_at"]) == timedelta(
            days=7
        )
        explicit = upload(c, b"temp", "t.txt", retention_policy="temporary")
        assert explicit["retention_policy"] == "temporary" and explicit["ttl_days"] == 30


def test_rw_defaults_to_permanent(client: httpx.Client) -> None:
    meta = upload(client, b"perm", "p.txt")
    assert (meta["retention_policy"], meta["ttl_days"], meta["expires_at"]) == (
        "permanent",
        None,
        None,
    )
    explicit = upload(client, b"perm", "p.txt", retention_policy="permanent")
    assert explicit["retention_policy"] == "permanent"


def test_other_retention_kind_is_mode_not_allowed(
    rw: StorageElementUnderTest, edit: StorageElementUnderTest
) -> None:
    for se, kind in ((rw, "temporary"), (edit, "permanent")):
        with se.client() as c:
            before = se.attrs()
            r = c.post(
                "/api/v1/files", content=b"x", params={"filename": "x", "retention_policy": kind}
            )
            assert_error(r, 409, "MODE_NOT_ALLOWED")
            r = c.post(
                "/api/v1/files", files={"file": ("x", b"x")}, data={"retention_policy": kind}
            )
            assert_error(r, 409, "MODE_NOT_ALLOWED")
            assert se.attrs() == before
            assert se.tmp_entries() == []


@pytest.mark.parametrize("extra", [{}, {"retention_policy": "permanent"}])
def test_ttl_days_with_permanent_is_400(
    rw: StorageElementUnderTest, client: httpx.Client, extra: dict[str, str]
) -> None:
    before = rw.attrs()
    r = client.post(
        "/api/v1/files", content=b"x", params={"filename": "x", "ttl_days": "5", **extra}
    )
    assert_error(r, 400, "VALIDATION_ERROR")
    assert rw.attrs() == before
