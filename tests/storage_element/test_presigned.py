"""Presigned downloads (``SE_S3_PRESIGNED_DOWNLOADS``, issue 16): an S3 SE answers a
download with a 307 to a presigned URL of SeaweedFS; S3 itself serves the bytes, the
name and the type. Every check of an ordinary download comes first."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from artstore.contracts.se import NO_REDIRECT_HEADER
from tests.conftest import SEFactory
from tests.support.se import StorageElementUnderTest, sha256_hex

DATA = random.Random(16).randbytes(300_000)
NAME = "Отчёт «Q3» résumé.pdf"
PRESIGNED = {"SE_S3_PRESIGNED_DOWNLOADS": "true"}


def _upload(se: StorageElementUnderTest, data: bytes = DATA, name: str = NAME) -> str:
    with se.client() as c:
        r = c.post(
            "/api/v1/files",
            content=data,
            params={"filename": name},
            headers={"Content-Type": "application/pdf"},
        )
    assert r.status_code == 201, r.text
    return str(r.json()["file_id"])


def _redirect(c: httpx.Client, file_id: str, **headers: str) -> str:
    """The Location of a 307 answer to a download (asserting the redirect's shape)."""
    r = c.get(f"/api/v1/files/{file_id}/download", headers=headers)
    assert r.status_code == 307, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["etag"] == f'"{sha256_hex(DATA)}"'  # the file's, not S3's MD5 one
    assert r.content == b""
    return str(r.headers["location"])


@pytest.mark.s3_only
def test_download_and_range_through_the_redirect(se_factory: SEFactory) -> None:
    se = se_factory("rw", **PRESIGNED)
    fid = _upload(se)
    assert se.backend.server is not None
    endpoint = urlsplit(se.backend.server.endpoint)
    with se.client() as c:
        streamed = c.get(f"/api/v1/files/{fid}/download", headers={NO_REDIRECT_HEADER: "1"})
        assert streamed.status_code == 200 and streamed.content == DATA  # asked to stream
        location = _redirect(c, fid)
        url = urlsplit(location)
        assert (url.scheme, url.netloc) == (endpoint.scheme, endpoint.netloc)
        assert parse_qs(url.query)["X-Amz-Expires"] == ["300"]  # the default TTL
        # The presigned URL is the credential: no Authorization goes to S3.
        got = httpx.get(location)
        assert got.status_code == 200 and got.content == DATA
        assert got.headers["content-disposition"] == streamed.headers["content-disposition"]
        assert "filename*=UTF-8''" in got.headers["content-disposition"]
        assert got.headers["content-type"] == "application/pdf"

    # A client that follows redirects (httpx drops Authorization for the other origin).
    with se.client(follow_redirects=True) as c:
        whole = c.get(f"/api/v1/files/{fid}/download")
        assert whole.status_code == 200 and sha256_hex(whole.content) == sha256_hex(DATA)
        assert [h.status_code for h in whole.history] == [307]
        for rng, start, end in (
            ("bytes=0-0", 0, 0),
            ("bytes=1000-200999", 1000, 200_999),
            ("bytes=-17", len(DATA) - 17, len(DATA) - 1),
            ("bytes=299990-", 299_990, len(DATA) - 1),
        ):
            part = c.get(f"/api/v1/files/{fid}/download", headers={"Range": rng})
            assert part.status_code == 206, (rng, part.text)
            assert [h.status_code for h in part.history] == [307]
            assert part.content == DATA[start : end + 1], rng
            assert part.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"


@pytest.mark.s3_only
def test_the_se_still_answers_what_it_decides(se_factory: SEFactory) -> None:
    se = se_factory("rw", **PRESIGNED)
    fid = _upload(se)
    url = f"/api/v1/files/{fid}/download"
    with se.client() as c:
        head = c.head(url)
        assert head.status_code == 200 and "location" not in head.headers
        assert head.headers["content-length"] == str(len(DATA))
        etag = head.headers["etag"]
        cached = c.get(url, headers={"If-None-Match": etag})
        assert cached.status_code == 304 and "location" not in cached.headers
        assert c.get(url, headers={"Range": "bytes=999999-"}).status_code == 416
        # Validators S3 would compare with its own ETag: the SE streams.
        by_etag = c.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
        assert by_etag.status_code == 206 and by_etag.content == DATA[:10]
        stale = c.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
        assert stale.status_code == 200 and stale.content == DATA
        # A Range the SE ignores (several ranges) is not handed to S3 either.
        multi = c.get(url, headers={"Range": "bytes=0-1,5-6"})
        assert multi.status_code == 200 and multi.content == DATA
        # Not a redirect but a refusal: a token the SE does not accept.
    with httpx.Client(base_url=se.url) as anon:
        bad = anon.get(url, headers={"Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401 and "location" not in bad.headers
        assert anon.get(url).status_code == 401
    with se.client(scopes="storage:read") as c:
        assert c.get(url).status_code == 403


@pytest.mark.s3_only
def test_quarantined_and_deleted_files_never_redirect(se_factory: SEFactory) -> None:
    se = se_factory("edit", **PRESIGNED)
    damaged, deleted, fine = _upload(se), _upload(se), _upload(se)
    [blob] = [b for b in se.blobs() if damaged.replace("-", "")[:8] in b.name]
    spoiled = bytearray(blob.read_bytes())
    spoiled[5] ^= 0xFF
    se._s3.put_object(Bucket=blob.bucket, Key=blob.key, Body=bytes(spoiled))
    with se.client() as c:
        deep = c.post("/api/v1/maintenance/reconcile", params={"deep": "true"}).json()
        assert [(i["kind"], i["file_id"]) for i in deep["issues"]] == [
            ("checksum_mismatch", damaged)
        ]
        quarantined = c.get(f"/api/v1/files/{damaged}/download")
        assert quarantined.status_code == 404 and "location" not in quarantined.headers
        assert c.delete(f"/api/v1/files/{deleted}").status_code == 204
        gone = c.get(f"/api/v1/files/{deleted}/download")
        assert gone.status_code == 410 and "location" not in gone.headers
        assert _redirect(c, fine)


@pytest.mark.s3_only
def test_an_expired_url_is_refused_by_s3(se_factory: SEFactory) -> None:
    se = se_factory("rw", SE_S3_PRESIGNED_TTL="1", **PRESIGNED)
    fid = _upload(se)
    with se.client() as c:
        location = _redirect(c, fid)
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["1"]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    # Wait until the URL's validity has passed on this clock (S3 runs on the same one).
    while (datetime.now(UTC) - signed_at).total_seconds() <= 2:
        time.sleep(0.2)
    refused = httpx.get(location)
    assert refused.status_code == 403, refused.text
    assert DATA[:64] not in refused.content


@pytest.mark.s3_only
def test_public_endpoint_names_the_host_clients_use(se_factory: SEFactory) -> None:
    se = se_factory("rw", SE_S3_PUBLIC_ENDPOINT="https://files.example.org:8443", **PRESIGNED)
    fid = _upload(se)
    with se.client() as c:
        url = urlsplit(_redirect(c, fid))
    assert (url.scheme, url.netloc) == ("https", "files.example.org:8443")
    assert se.backend.server is not None
    assert url.path.startswith(f"/{se.backend.server.bucket}/{se.s3_prefix}")


@pytest.mark.local_only
def test_local_backend_refuses_the_setting(se_factory: SEFactory) -> None:
    se = se_factory("rw", start=False, **PRESIGNED)
    se.process.start(wait=False)
    assert se.process.wait_exit(60) != 0
    log = se.process.log()
    assert "SE_S3_PRESIGNED_DOWNLOADS=true needs SE_BACKEND=s3" in log, log
