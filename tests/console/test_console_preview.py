"""The console's preview on a file's detail page (issue 17, "open its detail and
preview"): a real browser (Debian's chromium, offline but for loopback) against a real
admin, ingester, two storage elements and the query module.

No job worker runs here: the worker's part is done by hand, as ``preview.make`` does it
— the original rendered by ``artstore.worker.previews.render`` (the same limited child
process), each size PUT with ``StorageElementClient.put_preview`` on every SE holding a
copy — then the SEs' catalog sync lists the sizes in ``FileMetadata.previews``. The
page fetches ``GET /api/v1/files/{id}/preview?size=256`` from the query module with its
bearer token and shows the bytes through a ``blob:`` URL (an ``<img src>`` to the query
module itself could carry no Authorization header)."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from artstore.common.se_client import StorageElementClient, bearer
from artstore.worker.previews.render import render
from artstore.worker.previews.settings import PreviewSettings
from tests.console.test_console import TIMEOUT_MS, go, shot, sign_in
from tests.support.chromium import off_loopback, offline_chromium
from tests.support.database import TestDatabase
from tests.support.jobs import wait_for
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, wait_ready

pytestmark = pytest.mark.process

RED, BLUE = (220, 0, 0), (0, 0, 220)

# Every <img> of the page that finished loading without pixels (a broken image).
BROKEN_IMAGES = (
    "[...document.images].filter(i => i.complete && i.naturalWidth === 0).map(i => i.src)"
)


@dataclass
class PreviewConsole:
    system: System
    ingester: ServiceProcess
    query: ServiceProcess
    ses: list[StorageElementUnderTest]
    owner: dict[str, Any]
    owner_token: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # page errors, CSP, failed previews

    @property
    def url(self) -> str:
        return f"{self.system.admin.url}/console/"

    def upload(self, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        """One file uploaded by the owner through the ingester, kept (permanent)."""
        r = httpx.put(
            f"{self.ingester.url}/api/v1/files/upload",
            params={"filename": name, "retention_policy": "permanent"},
            content=data,
            headers={"Authorization": f"Bearer {self.owner_token}", "Content-Type": content_type},
            timeout=60,
        )
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    def metadata(self, file_id: str) -> dict[str, Any]:
        r = httpx.get(
            f"{self.query.url}/api/v1/files/{file_id}",
            headers={"Authorization": f"Bearer {self.owner_token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def make_previews(self, meta: dict[str, Any], data: bytes) -> dict[int, bytes]:
        """``preview.make``'s part without a worker: render in the limited child process,
        then store every size on every SE holding a copy."""
        req = PreviewSettings().render_request()
        # Playwright's sync API keeps an event loop in this thread: run beside it.
        with ThreadPoolExecutor(1) as pool:
            previews = pool.submit(asyncio.run, render(data, req, seconds=60)).result()
        self.put_previews(meta, previews)
        return previews

    def put_previews(self, meta: dict[str, Any], previews: dict[int, bytes]) -> None:
        """``put_preview`` of each size on every SE holding a copy (a storage:write
        token, as the worker's); returns once the query module lists the sizes."""
        by_id = {str(se.id): se for se in self.ses}
        holders = [by_id[c["storage_element_id"]] for c in meta["copies"]]
        assert holders, meta
        token = self.system.admin.sa_token(["storage:write", "files:read"])

        async def put() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                client = StorageElementClient(http)
                for se in holders:
                    for size, image in previews.items():
                        stored = await client.put_preview(
                            se.url, meta["file_id"], size, image, "image/webp", bearer(token)
                        )
                        assert stored["size"] == size and stored["format"] == "webp", stored

        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, put()).result()
        want = sorted(previews)
        wait_for(
            "the catalog lists the previews",
            lambda: self.metadata(meta["file_id"])["previews"] == want,
        )


@pytest.fixture(scope="module")
def console(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PreviewConsole]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_console_preview")
    system = System(tmp_path_factory.mktemp("console-preview"), db)
    try:
        ses = [system.add_se("rw"), system.add_se("rw")]
        ingester = system.start_ingester(IG_REPLICAS="2")
        query = system.start_query()
        wait_ready(query)
        admin = system.admin
        admin.process.stop()
        admin.process.start(
            extra_env={
                "AM_INGESTER_PUBLIC_URL": ingester.url,
                "AM_QUERY_PUBLIC_URL": query.url,
                "AM_CONSOLE_REDIRECT_URIS": f"{admin.url}/console/callback",
            }
        )
        owner = admin.create_user(["user"])
        token = str(admin.password_grant(owner["username"], owner["password"])["access_token"])
        yield PreviewConsole(system, ingester, query, ses, owner, token)
    finally:
        system.stop()
        db.drop()


def _context(browser: Browser, console: PreviewConsole) -> BrowserContext:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.on("request", lambda r: console.requests.append(r.url))

    def on_page(p: Page) -> None:
        p.on("pageerror", lambda e: console.problems.append(f"page error: {e}"))

        def on_console(m: ConsoleMessage) -> None:
            # CSP violations, and the browser's own line for a preview answered >= 400
            # or an image that failed: a detail page must show neither. (A user's page
            # may see other refusals, e.g. the audit history is the operators'.)
            if m.type != "error":
                return
            where = str(m.location.get("url", ""))
            if "Content Security Policy" in m.text or "/preview" in where or "blob:" in where:
                console.problems.append(f"{m.text} ({where})")

        p.on("console", on_console)

    ctx.on("page", on_page)
    return ctx


@pytest.fixture(scope="module")
def page(console: PreviewConsole) -> Iterator[Page]:
    with offline_chromium() as browser:
        ctx = _context(browser, console)
        p = ctx.new_page()
        sign_in(p, console, console.owner["username"], console.owner["password"])  # type: ignore[arg-type]
        yield p
        ctx.close()


@pytest.fixture(autouse=True)
def _nothing_leaves_loopback(console: PreviewConsole) -> Iterator[None]:
    yield
    assert off_loopback(console.requests) == []
    assert console.problems == []


def _halves(w: int, h: int, fmt: str) -> bytes:
    """Red left half, blue right half: the shown preview can be told from any other."""
    im = Image.new("RGB", (w, h), RED)
    im.paste(BLUE, (w // 2, 0, w, h))
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def _pixel(page: Page, selector: str, x: float, y: float) -> list[int]:
    """The RGB of the loaded image's pixel at (x, y) of its natural size, read from a
    canvas (a blob: URL of the page's own origin does not taint it)."""
    return list(
        page.locator(selector).evaluate(
            """(img, [x, y]) => {
                const c = document.createElement('canvas');
                c.width = img.naturalWidth; c.height = img.naturalHeight;
                const g = c.getContext('2d');
                g.drawImage(img, 0, 0);
                return Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
            }""",
            [x, y],
        )
    )


def _close(got: list[int], want: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(got, want, strict=True))  # WebP is lossy


def test_detail_page_shows_the_256_preview(page: Page, console: PreviewConsole) -> None:
    name = f"photo-{uuid.uuid4().hex[:8]}.png"
    data = _halves(640, 480, "PNG")
    meta = console.upload(name, data, "image/png")
    assert meta["previews"] == []
    previews = console.make_previews(meta, data)
    small = Image.open(io.BytesIO(previews[256]))
    assert small.size == (256, 192)  # longest side 256, never the 1024 one

    go(page, f"#/file/{meta['file_id']}", name)
    img = page.locator("#preview img")
    expect(img).to_be_visible()
    expect(img).to_have_attribute("alt", f"Preview of {name}")
    # Really loaded: decoded pixels, not a broken-image icon.
    page.wait_for_function(
        "() => { const i = document.querySelector('#preview img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    natural = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert natural == [256, 192]
    assert (img.get_attribute("src") or "").startswith("blob:")
    # The bytes the query module served: red on the left, blue on the right.
    assert _close(_pixel(page, "#preview img", 32, 96), RED)
    assert _close(_pixel(page, "#preview img", 224, 96), BLUE)
    assert page.evaluate(BROKEN_IMAGES) == []
    expect(page.locator("#error")).to_be_hidden()
    # Asked of the query module, at the size the page shows.
    asked = [u for u in console.requests if f"/api/v1/files/{meta['file_id']}/preview" in u]
    assert asked and all(u.startswith(console.query.url) and "size=256" in u for u in asked)
    shot(page, "file-detail-preview")


def test_a_file_without_a_preview_shows_no_image_and_no_error(
    page: Page, console: PreviewConsole
) -> None:
    # A previewable file whose preview is not made yet (the query would say 202), and a
    # type that never gets one (404 NO_PREVIEW): neither shows an image or an error.
    pending = f"pending-{uuid.uuid4().hex[:8]}.jpg"
    never = f"notes-{uuid.uuid4().hex[:8]}.txt"
    files = {
        pending: console.upload(pending, _halves(300, 200, "JPEG"), "image/jpeg"),
        never: console.upload(never, b"plain text gets no preview\n", "text/plain"),
    }
    for name, meta in files.items():
        assert console.metadata(meta["file_id"])["previews"] == []
        go(page, f"#/file/{meta['file_id']}", name)
        expect(page.locator("#checksum")).to_have_text(meta["checksum"])
        expect(page.get_by_role("region", name="Copies")).to_be_visible()
        expect(page.locator("#preview")).to_be_empty()
        expect(page.locator("#preview img")).to_have_count(0)
        assert page.evaluate(BROKEN_IMAGES) == []
        expect(page.locator("#error")).to_be_hidden()
        # The catalog lists none: the page does not even ask (no 202 or 404 to show).
        assert not [u for u in console.requests if f"{meta['file_id']}/preview" in u]


def test_a_preview_that_does_not_decode_leaves_no_broken_image(
    page: Page, console: PreviewConsole
) -> None:
    # The catalog lists a 256 preview and the query module serves it (200), but its
    # bytes are damaged past the WebP header: the page drops the image it could not show.
    name = f"damaged-{uuid.uuid4().hex[:8]}.png"
    meta = console.upload(name, _halves(400, 300, "PNG"), "image/png")
    damaged = b"RIFF" + (1000).to_bytes(4, "little") + b"WEBPVP8 " + b"\x00garbage" * 100
    console.put_previews(meta, {256: damaged})
    go(page, "#/files", "Files")
    # Every <img> put into the detail page is counted (it may be gone by the next look).
    page.evaluate(
        """() => {
            window.previewImgs = 0;
            new MutationObserver((ms) => {
                for (const m of ms) for (const n of m.addedNodes)
                    if (n.nodeName === 'IMG' || n.querySelector?.('img')) window.previewImgs++;
            }).observe(document.body, { childList: true, subtree: true });
        }"""
    )
    go(page, f"#/file/{meta['file_id']}", name)
    page.wait_for_function(
        "() => window.previewImgs > 0 && !document.querySelector('#preview img')"
    )
    expect(page.locator("#preview")).to_be_empty()
    assert page.evaluate(BROKEN_IMAGES) == []
    expect(page.locator("#checksum")).to_have_text(meta["checksum"])
    expect(page.locator("#error")).to_be_hidden()
