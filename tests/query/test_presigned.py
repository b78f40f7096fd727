"""Presigned downloads through the query module (issue 16): an SE on SeaweedFS with
``SE_S3_PRESIGNED_DOWNLOADS`` answers a download with a 307 to a presigned URL, and the
query module passes it on (downloads and signed links) unless
``QM_PASS_DOWNLOAD_REDIRECTS=false``, when it relays bytes the SE streams."""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from artstore.client import ChecksumMismatchError, Client, ClientConfig
from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess
from tests.support.se import S3_CAPACITY, StorageElementUnderTest
from tests.support.seaweed import SeaweedServer
from tests.support.system import System, wait_ready

DATA = random.Random(1616).randbytes(400_000)
NAME = "Bericht «März» 2026.pdf"
SERVED_BY = "x-artstore-storage-element"


class PresignedSystem:
    def __init__(self, root: Path, db: TestDatabase, seaweed: SeaweedServer) -> None:
        self.seaweed = seaweed
        self.system = System(root, db)

        def s3_se(prefix: str, **env: str) -> StorageElementUnderTest:
            return self.system.add_se(
                "edit",
                **seaweed.s3_env(prefix),
                SE_MAX_CAPACITY=str(S3_CAPACITY),
                SE_S3_PRESIGNED_DOWNLOADS="true",
                **env,
            )

        self.se_prefix = f"qp-{uuid.uuid4().hex[:8]}/"
        self.se = s3_se(self.se_prefix)
        # Its URLs expire after 1 s.
        self.short_se = s3_se(f"qp-{uuid.uuid4().hex[:8]}/", SE_S3_PRESIGNED_TTL="1")
        common = {"QM_REGISTRY_POLL_INTERVAL": "1"}
        self.query: ServiceProcess = self.system.start_query(**common)
        self.relay: ServiceProcess = self.system.start_query(
            QM_PASS_DOWNLOAD_REDIRECTS="false", **common
        )
        for q in (self.query, self.relay):
            wait_ready(q)
        self.token = self.system.user_token(["user"])

    def client(self, proc: ServiceProcess, token: str | None = None, **kw: Any) -> httpx.Client:
        tok = self.token if token is None else token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=proc.url, headers=headers, timeout=30, **kw)

    def upload(self, se: StorageElementUnderTest, data: bytes = DATA) -> str:
        r = httpx.post(
            f"{se.url}/api/v1/files",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/pdf"},
            content=data,
            params={"filename": NAME},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["file_id"])

    def link(self, file_id: str) -> str:
        with self.client(self.query) as c:
            r = c.post(f"/api/v1/files/{file_id}/link", json={"expires_in": 600})
        assert r.status_code == 201, r.text
        return str(r.json()["url"])


@pytest.fixture(scope="module")
def ps(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    seaweed: SeaweedServer,
) -> Iterator[PresignedSystem]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_qpresign")
    ps = None
    try:
        ps = PresignedSystem(tmp_path_factory.mktemp("qpresign"), db, seaweed)
        yield ps
    finally:
        if ps is not None:
            ps.system.stop()
        db.drop()


def _location(r: httpx.Response, ps: PresignedSystem, se: StorageElementUnderTest) -> str:
    """The presigned URL of a 307 the query module passed on (asserting its shape)."""
    assert r.status_code == 307, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers[SERVED_BY] == se.id
    url = urlsplit(r.headers["location"])
    assert f"{url.scheme}://{url.netloc}" == ps.seaweed.endpoint
    return str(r.headers["location"])


def _wait_expired(location: str) -> None:
    """Until the URL's validity (X-Amz-Date + X-Amz-Expires) has passed on this clock,
    which S3 shares."""
    query = parse_qs(urlsplit(location).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    lifetime = int(query["X-Amz-Expires"][0])
    while (datetime.now(UTC) - signed_at).total_seconds() <= lifetime + 1:
        time.sleep(0.2)


def test_download_and_range_are_redirected_to_s3(ps: PresignedSystem) -> None:
    fid = ps.upload(ps.se)
    url = f"/api/v1/files/{fid}/download"
    with ps.client(ps.query) as c:
        location = _location(c.get(url), ps, ps.se)
        direct = httpx.get(location)
        assert direct.status_code == 200 and direct.content == DATA
        streamed = c.head(url)  # HEAD is answered by the SE (through the query)
        assert streamed.status_code == 200 and "location" not in streamed.headers
        assert direct.headers["content-disposition"] == streamed.headers["content-disposition"]
        assert "filename*=UTF-8''Bericht" in direct.headers["content-disposition"]
        assert direct.headers["content-type"] == "application/pdf"
    with ps.client(ps.query, follow_redirects=True) as c:
        whole = c.get(url)
        assert whole.status_code == 200 and whole.content == DATA
        assert [h.status_code for h in whole.history] == [307]
        part = c.get(url, headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == DATA[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(DATA)}"
        tail = c.get(url, headers={"Range": "bytes=-5"})
        assert tail.status_code == 206 and tail.content == DATA[-5:]


def test_signed_link_is_redirected_to_s3(ps: PresignedSystem) -> None:
    fid = ps.upload(ps.se)
    link = ps.link(fid)
    first = httpx.get(link)
    _location(first, ps, ps.se)
    whole = httpx.get(link, follow_redirects=True)
    assert whole.status_code == 200 and whole.content == DATA
    assert "filename*=UTF-8''Bericht" in whole.headers["content-disposition"]
    part = httpx.get(link, headers={"Range": "bytes=399990-"}, follow_redirects=True)
    assert part.status_code == 206 and part.content == DATA[399_990:]


def test_expired_urls_are_refused_by_s3(ps: PresignedSystem) -> None:
    fid = ps.upload(ps.short_se)
    with ps.client(ps.query) as c:
        by_download = _location(c.get(f"/api/v1/files/{fid}/download"), ps, ps.short_se)
    by_link = _location(httpx.get(ps.link(fid)), ps, ps.short_se)
    for location in (by_download, by_link):
        assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["1"]
        _wait_expired(location)
        refused = httpx.get(location)
        assert refused.status_code == 403, refused.text
        assert DATA[:64] not in refused.content
    # The query module hands out a fresh URL each time: the file itself is still there.
    with ps.client(ps.query, follow_redirects=True) as c:
        again = c.get(f"/api/v1/files/{fid}/download")
    assert again.status_code == 200 and again.content == DATA


def test_relaying_query_streams_instead(ps: PresignedSystem) -> None:
    fid = ps.upload(ps.se)
    url = f"/api/v1/files/{fid}/download"
    with ps.client(ps.relay) as c:  # no redirects followed: the bytes come from the query
        whole = c.get(url)
        assert whole.status_code == 200 and whole.content == DATA
        assert whole.headers[SERVED_BY] == ps.se.id
        assert "filename*=UTF-8''Bericht" in whole.headers["content-disposition"]
        part = c.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == DATA[10:20]
    token = ps.link(fid).rsplit("/", 1)[-1]
    via_link = httpx.get(f"{ps.relay.url}/api/v1/links/{token}")
    assert via_link.status_code == 200 and via_link.content == DATA


def test_refusals_are_never_redirects(ps: PresignedSystem) -> None:
    fid = ps.upload(ps.se)
    url = f"/api/v1/files/{fid}/download"
    for token in ("not-a-token", ""):
        with ps.client(ps.query, token=token) as c:
            r = c.get(url)
            assert r.status_code == 401 and "location" not in r.headers
    deleted = ps.upload(ps.se)
    with httpx.Client(base_url=ps.se.url, timeout=30) as se:
        auth = {"Authorization": f"Bearer {ps.system.admin_token()}"}  # files:delete
        assert se.delete(f"/api/v1/files/{deleted}", headers=auth).status_code == 204
    with ps.client(ps.query) as c:
        gone = c.get(f"/api/v1/files/{deleted}/download")
        assert gone.status_code == 410 and "location" not in gone.headers


def test_artstore_client_verifies_and_resumes_through_the_redirect(
    ps: PresignedSystem, tmp_path: Path
) -> None:
    fid = ps.upload(ps.se)
    with ps.client(ps.query) as c:  # the 307 carries the file's SHA-256 ETag (S3 has its own)
        redirect = c.get(f"/api/v1/files/{fid}/download")
    assert redirect.status_code == 307
    assert redirect.headers["etag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    config = ClientConfig(query_url=ps.query.url, token=ps.token)
    with Client(config) as client:
        got = client.download(fid, tmp_path / "whole.pdf")
        assert got.sha256 == hashlib.sha256(DATA).hexdigest() and got.resumed_from == 0
        assert (tmp_path / "whole.pdf").read_bytes() == DATA
        # A part left by an interrupted download (its ETag the one the 307 gave):
        # resumed with Range + If-Range, which the SE streams itself.
        dest = tmp_path / "resumed.pdf"
        dest.with_name("resumed.pdf.part").write_bytes(DATA[:100_000])
        meta = {"file_id": fid, "etag": redirect.headers["etag"], "total": len(DATA)}
        dest.with_name("resumed.pdf.part.json").write_text(json.dumps(meta))
        again = client.download(fid, dest)
        assert again.resumed_from == 100_000 and dest.read_bytes() == DATA


def test_quarantined_copy_is_404_not_a_redirect(ps: PresignedSystem, tmp_path: Path) -> None:
    fid = ps.upload(ps.se)
    s3 = ps.seaweed.client()
    prefix = ps.se_prefix
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=ps.seaweed.bucket, Prefix=prefix).get("Contents", [])
    ]
    [key] = [k for k in keys if fid.replace("-", "")[:8] in k and not k.endswith(".attr.json")]
    spoiled = bytearray(s3.get_object(Bucket=ps.seaweed.bucket, Key=key)["Body"].read())
    spoiled[7] ^= 0xFF
    s3.put_object(Bucket=ps.seaweed.bucket, Key=key, Body=bytes(spoiled))
    # Before the scrubber finds it, S3 hands out the rotten bytes (the trade-off of
    # presigned downloads): artstore.client refuses them by the 307's SHA-256 ETag.
    config = ClientConfig(query_url=ps.query.url, token=ps.token)
    with Client(config) as client, pytest.raises(ChecksumMismatchError):
        client.download(fid, tmp_path / "rotten.pdf")
    assert not (tmp_path / "rotten.pdf").exists()
    with ps.se.client("storage:write") as c:
        deep = c.post("/api/v1/maintenance/reconcile", params={"deep": "true"})
        assert deep.status_code == 200, deep.text
        assert [i["file_id"] for i in deep.json()["issues"]] == [fid]
    with ps.client(ps.query) as c:
        r = c.get(f"/api/v1/files/{fid}/download")
        assert r.status_code == 404 and "location" not in r.headers
