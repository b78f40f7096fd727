"""The console in a browser calls the ingester (tus uploads, as tus-js-client does) and
the query module (search, downloads) from the admin's origin (issue 17). These are real
preflights and requests over HTTP to running processes, with the exact headers
Chromium sends for tus-js-client (its Access-Control-Request-Headers: lower case,
sorted, comma-separated), and the answers are checked for what the page must be able
to read: a header not exposed is invisible to the script, and the upload stalls."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.admin import ISSUER
from tests.support.process import ServiceProcess
from tests.support.system import System, system_of_its_own

pytestmark = pytest.mark.process

CONSOLE = ISSUER  # the admin's public URL: where the console is served
TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Services:
    system: System
    ingester: ServiceProcess
    query: ServiceProcess
    token: str


@pytest.fixture(scope="module")
def services(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    with system_of_its_own(request, tmp_path_factory, "cors_console") as system:
        system.add_se("edit")  # uploads are temporary unless asked otherwise
        ingester = system.start_ingester(IG_REPLICAS="1")
        query = system.start_query()
        yield Services(system, ingester, query, system.user_token(["user"]))


def preflight(url: str, method: str, headers: str, origin: str = CONSOLE) -> httpx.Response:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return httpx.options(url, headers=asked, timeout=30)


def listed(response: httpx.Response, name: str) -> set[str]:
    return {h.strip().lower() for h in response.headers.get(name, "").split(",") if h.strip()}


def granted(response: httpx.Response, method: str, headers: str) -> None:
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["access-control-allow-origin"] == CONSOLE
    assert method.lower() in listed(response, "access-control-allow-methods")
    assert set(filter(None, headers.split(","))) <= listed(response, "access-control-allow-headers")


# What Chromium asks before each request tus-js-client 4 makes (headers it sets itself
# plus the console's Authorization), and the variants its options switch on.
TUS_PREFLIGHTS = [
    ("POST", "authorization,tus-resumable,upload-length,upload-metadata"),  # create
    # uploadDataDuringCreation: creation-with-upload
    ("POST", "authorization,content-type,tus-resumable,upload-length,upload-metadata"),
    ("POST", "authorization,tus-resumable,upload-defer-length,upload-metadata"),  # deferred
    ("POST", "authorization,tus-resumable,upload-concat,upload-length,upload-metadata"),
    ("HEAD", "authorization,tus-resumable"),  # resume: where are we?
    ("PATCH", "authorization,content-type,tus-resumable,upload-offset"),
    ("PATCH", "authorization,content-type,tus-resumable,upload-checksum,upload-offset"),
    # overridePatchMethod: PATCH sent as POST
    ("POST", "authorization,content-type,tus-resumable,upload-offset,x-http-method-override"),
    ("DELETE", "authorization,tus-resumable"),  # abort with terminate
    # the console's own request id, Swagger UI's X-Requested-With
    ("POST", "authorization,content-type,x-request-id,x-requested-with"),
]


@pytest.mark.parametrize(("method", "headers"), TUS_PREFLIGHTS)
def test_tus_js_client_preflights_are_granted(
    services: Services, method: str, headers: str
) -> None:
    where = f"{services.ingester.url}/api/v1/uploads"
    if method != "POST":
        where += "/se-x/00000000-0000-0000-0000-000000000000"
    granted(preflight(where, method, headers), method, headers)


def test_a_tus_upload_from_the_console_origin_reads_what_it_needs(services: Services) -> None:
    data = b"console upload " * 1000
    origin = {"Origin": CONSOLE, "Authorization": f"Bearer {services.token}"}
    meta = "filename " + base64.b64encode(b"console.txt").decode()
    with httpx.Client(base_url=services.ingester.url, headers=origin, timeout=60) as c:
        created = c.post(
            "/api/v1/uploads",
            headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
        )
        assert created.status_code == 201, created.text
        assert created.headers["access-control-allow-origin"] == CONSOLE
        exposed = listed(created, "access-control-expose-headers")
        assert {"location", "tus-resumable", "upload-offset", "x-file-id"} <= exposed
        assert {"upload-expires", "tus-version", "tus-extension", "tus-max-size"} <= exposed
        assert {"tus-checksum-algorithm", "upload-length", "x-request-id"} <= exposed
        path = urlsplit(created.headers["location"]).path
        half = len(data) // 2
        sent = c.patch(
            path,
            content=data[:half],
            headers={
                **TUS,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": "0",
            },
        )
        assert sent.status_code == 204, sent.text
        assert sent.headers["access-control-allow-origin"] == CONSOLE
        assert "upload-offset" in listed(sent, "access-control-expose-headers")
        head = c.head(path, headers=TUS)
        assert head.headers["access-control-allow-origin"] == CONSOLE
        assert int(head.headers["upload-offset"]) == half
        # The rest as tus-js-client's overridePatchMethod sends it.
        done = c.post(
            path,
            content=data[half:],
            headers={
                **TUS,
                "X-HTTP-Method-Override": "PATCH",
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(half),
            },
        )
        assert done.status_code == 204, done.text
        assert done.headers["access-control-allow-origin"] == CONSOLE
        file_id = created.headers["x-file-id"]
        # An error answer carries the grant too, so the page can read the envelope.
        bad = c.head("/api/v1/uploads/se-x/00000000-0000-0000-0000-000000000000", headers=TUS)
        assert bad.status_code >= 400
        assert bad.headers["access-control-allow-origin"] == CONSOLE

    # The query module: search and download from the same origin.
    download = f"{services.query.url}/api/v1/files/{file_id}/download"
    granted(preflight(download, "GET", "authorization,range"), "GET", "authorization,range")
    search = f"{services.query.url}/api/v1/search"
    asked = "authorization,content-type"
    granted(preflight(search, "POST", asked), "POST", asked)
    with httpx.Client(headers=origin, timeout=60) as c:
        deadline = time.monotonic() + 30
        got = c.get(download)
        while got.status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.2)  # the SE's catalog row is written after the answer
            got = c.get(download)
        assert got.status_code == 200, got.text
        assert got.content == data
        assert got.headers["access-control-allow-origin"] == CONSOLE
        exposed = listed(got, "access-control-expose-headers")
        assert {"content-disposition", "content-length", "etag", "content-range"} <= exposed
        assert "content-disposition" in got.headers
        part = c.get(download, headers={"Range": "bytes=0-9"})
        assert part.status_code == 206
        assert part.headers["access-control-allow-origin"] == CONSOLE
        found = c.post(search, json={"query": "console"})
        assert found.status_code == 200, found.text
        assert found.headers["access-control-allow-origin"] == CONSOLE


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:9999"])
def test_a_foreign_origin_gets_no_grant(services: Services, origin: str) -> None:
    for url in (f"{services.ingester.url}/api/v1/uploads", f"{services.query.url}/api/v1/search"):
        r = preflight(url, "POST", "authorization", origin=origin)
        assert "access-control-allow-origin" not in r.headers
        assert r.status_code == 400
        plain = httpx.get(f"{url.rsplit('/api', 1)[0]}/health/live", headers={"Origin": origin})
        assert "access-control-allow-origin" not in plain.headers


def test_swagger_ui_of_artstore_up_is_a_default_origin(services: Services) -> None:
    headers = "authorization,x-requested-with"
    for url in (f"{services.ingester.url}/api/v1/uploads", f"{services.query.url}/api/v1/search"):
        r = preflight(url, "POST", headers, origin="http://localhost:8020")
        assert r.headers["access-control-allow-origin"] == "http://localhost:8020"


def test_cors_origins_setting_replaces_the_default(services: Services) -> None:
    query = services.system.start_query(CORS_ORIGINS="https://console.example.org/")
    url = f"{query.url}/api/v1/search"
    ok = preflight(url, "POST", "authorization", origin="https://console.example.org")
    assert ok.headers["access-control-allow-origin"] == "https://console.example.org"
    assert "access-control-allow-origin" not in preflight(url, "POST", "authorization").headers
