"""The ingester in-process, with no storage element: every refusal that comes before
placement (fields, auth, multipart order), and the answer when no SE can take it."""

from __future__ import annotations

import httpx

from tests.inprocess.conftest import bearer
from tests.inprocess.helpers import assert_error
from tests.support.issuer import TestIssuer

UPLOAD = "/api/v1/files/upload"


async def test_raw_upload_needs_a_filename(ingester: httpx.AsyncClient) -> None:
    assert_error(await ingester.put(UPLOAD, content=b"x"), 400, "VALIDATION_ERROR")


async def test_ttl_days_with_permanent_is_400(ingester: httpx.AsyncClient) -> None:
    fields = {"retention_policy": "permanent", "ttl_days": "5"}
    r = await ingester.post(UPLOAD, data=fields, files={"file": ("x.txt", b"x")})
    assert_error(r, 400, "VALIDATION_ERROR")
    r = await ingester.put(UPLOAD, params={"filename": "x", **fields}, content=b"x")
    assert_error(r, 400, "VALIDATION_ERROR")


async def test_auth(ingester: httpx.AsyncClient, issuer: TestIssuer) -> None:
    r = await ingester.put(
        UPLOAD, params={"filename": "a"}, content=b"a", headers={"Authorization": ""}
    )
    assert_error(r, 401, "UNAUTHORIZED")
    assert r.headers["www-authenticate"].startswith("Bearer")
    reader = bearer(issuer, "files:read")
    r = await ingester.put(UPLOAD, params={"filename": "a"}, content=b"a", headers=reader)
    assert_error(r, 403, "FORBIDDEN")
    r = await ingester.post("/api/v1/files/batch", files={"file": ("a", b"a")}, headers=reader)
    assert_error(r, 403, "FORBIDDEN")


async def test_fields_after_the_file_part_are_refused(ingester: httpx.AsyncClient) -> None:
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nlate\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    r = await ingester.post(
        UPLOAD, content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert_error(r, 400, "VALIDATION_ERROR")


async def test_no_storage_element_is_503(ingester: httpx.AsyncClient) -> None:
    r = await ingester.put(UPLOAD, params={"filename": "a.txt"}, content=b"nowhere to go")
    assert_error(r, 503, "NO_STORAGE_AVAILABLE")
    assert r.json()["error"]["details"]["usable"] == []
