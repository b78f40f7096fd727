"""The web console (issue 17) in a real browser: Debian's chromium driven by Playwright,
against real processes (admin, three storage elements, ingester, query module); the
outside network is blocked in the browser and nothing answers for it (no page.route():
CORS preflights reach the services as they would in production).

One signed-in tab is shared by the module's tests, in file order: sign-in, the 20 MiB
upload cut midway by a loopback proxy and resumed, search, detail, signed link, SE mode,
service account, audit verify, phone width, keyboard. Screenshots of the main pages go to
``$ARTSTORE_CONSOLE_SCREENSHOTS`` when it is set (docs/console/)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from tests.console.tripping_proxy import TrippingProxy
from tests.support.admin import ADMIN_PASSWORD
from tests.support.chromium import off_loopback, offline_chromium
from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess
from tests.support.system import System

pytestmark = pytest.mark.process

TIMEOUT_MS = 60_000
MIB = 1024 * 1024
UPLOAD_SIZE = 20 * MIB
SHOTS = os.environ.get("ARTSTORE_CONSOLE_SCREENSHOTS", "")


@dataclass
class Console:
    system: System
    ingester: ServiceProcess
    query: ServiceProcess
    proxy: TrippingProxy
    mode_se: str  # storage_id of the SE whose mode the tests change
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # page errors, CSP violations
    uploaded: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.system.admin.url}/console/"


@pytest.fixture(scope="module")
def console(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_console")
    system = System(tmp_path_factory.mktemp("console"), db)
    proxy: TrippingProxy | None = None
    try:
        system.add_se("edit")  # temporary files (the upload's default)
        system.add_se("rw")  # permanent files
        mode_se = system.add_se("rw")  # the one whose mode changes
        ingester = system.start_ingester()
        query = system.start_query()
        port = urlsplit(ingester.url).port
        assert port is not None
        proxy = TrippingProxy(("127.0.0.1", port), trip_after=10 * MIB)
        # The console learns where the ingester (through the proxy) and the query module
        # are, and its callback is registered (the issuer here is not a loopback URL).
        admin = system.admin
        admin.process.stop()
        admin.process.start(
            extra_env={
                "AM_INGESTER_PUBLIC_URL": f"http://127.0.0.1:{proxy.port}",
                "AM_QUERY_PUBLIC_URL": query.url,
                "AM_CONSOLE_REDIRECT_URIS": f"{admin.url}/console/callback",
            }
        )
        yield Console(system, ingester, query, proxy, str(mode_se.id))
    finally:
        if proxy is not None:
            proxy.close()
        system.stop()
        db.drop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with offline_chromium() as b:
        yield b


def _watch(ctx: BrowserContext, console: Console) -> None:
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.on("request", lambda r: console.requests.append(r.url))

    def on_page(page: Page) -> None:
        page.on("pageerror", lambda e: console.problems.append(f"page error: {e}"))

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error" and "Content Security Policy" in msg.text:
                console.problems.append(msg.text)

        page.on("console", on_console)

    ctx.on("page", on_page)


@pytest.fixture(scope="module")
def context(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    ctx = browser.new_context(
        permissions=["clipboard-read", "clipboard-write"], viewport={"width": 1280, "height": 900}
    )
    _watch(ctx, console)
    yield ctx
    ctx.close()


@pytest.fixture(autouse=True)
def _nothing_leaves_loopback(console: Console) -> Iterator[None]:
    yield
    assert off_loopback(console.requests) == []
    assert console.problems == []


def shot(page: Page, name: str) -> None:
    """A screenshot for docs/console.md, only when asked for (CI leaves the tree alone)."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def sign_in(page: Page, console: Console, username: str, password: str) -> None:
    page.goto(console.url)
    page.get_by_role("button", name="Sign in").click()
    # The admin's own sign-in page (the authorization endpoint), then back with a code.
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/console/#/files$"))
    expect(page.locator("#who")).to_contain_text(username)


@pytest.fixture(scope="module")
def page(context: BrowserContext, console: Console) -> Page:
    """The signed-in tab the tests share (tokens live in the tab's sessionStorage)."""
    p = context.new_page()
    sign_in(p, console, "admin", ADMIN_PASSWORD)
    return p


def go(page: Page, route: str, heading: str) -> None:
    page.evaluate("r => { location.hash = r; }", route)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)


def test_sign_in_with_code_and_pkce_then_sign_out_revokes(
    browser: Browser, console: Console
) -> None:
    ctx = browser.new_context()
    _watch(ctx, console)
    try:
        page = ctx.new_page()
        page.goto(console.url)
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        shot(page, "sign-in")
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/api/v1/auth/authorize"))
        shot(page, "sign-in-admin-page")
        # A wrong password: the admin's page says so, the console is not reached.
        page.locator("#username").fill("admin")
        page.locator("#password").fill("not the password")
        page.locator("button[type=submit]").click()
        expect(page.get_by_role("alert")).to_be_visible()
        page.locator("#password").fill(ADMIN_PASSWORD)
        page.locator("button[type=submit]").click()
        page.wait_for_url(re.compile(r"/console/#/files$"))
        expect(page.locator("#who")).to_contain_text("admin")
        # The code is gone from the address bar; the tokens stay in this tab only.
        assert "code=" not in page.url
        tokens = page.evaluate("JSON.parse(sessionStorage.getItem('artstore.console.tokens'))")
        assert tokens["access_token"] and tokens["refresh_token"]
        me = httpx.get(
            f"{console.system.admin.url}/api/v1/auth/me",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=30,
        )
        assert me.status_code == 200, me.text
        assert me.json()["user"]["username"] == "admin"
        # Quietly refreshed before expiry, with no action of the user: a token about to
        # expire (as the tab stores it) is replaced by the console's own timer.
        page.evaluate(
            """() => {
                const key = 'artstore.console.tokens';
                const t = JSON.parse(sessionStorage.getItem(key));
                t.expires_at = Date.now() + 61000;
                sessionStorage.setItem(key, JSON.stringify(t));
                return import('./static/api.js').then(m => m.resume());
            }"""
        )
        page.wait_for_function(
            "old => JSON.parse(sessionStorage.getItem('artstore.console.tokens'))"
            ".access_token !== old",
            arg=tokens["access_token"],
        )
        fresh = page.evaluate("JSON.parse(sessionStorage.getItem('artstore.console.tokens'))")
        assert fresh["refresh_token"] != tokens["refresh_token"]  # each use rotates it
        # Sign-out revokes: the refresh token no longer gets a token.
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        again = console.system.admin.token_request(
            {
                "grant_type": "refresh_token",
                "refresh_token": fresh["refresh_token"],
                "client_id": "console",
            }
        )
        assert again.status_code == 400, again.text
    finally:
        ctx.close()


def test_upload_20_mib_cut_midway_resumes(page: Page, console: Console, tmp_path: Path) -> None:
    data = os.urandom(UPLOAD_SIZE)
    path = tmp_path / "console-20mib.bin"
    path.write_bytes(data)
    go(page, "#/upload", "Upload")
    page.get_by_label("Tags (comma-separated)").fill("console-test, big")
    page.get_by_label("Description").fill("uploaded from the console")
    console.proxy.arm()  # cuts every connection to the ingester after 10 MiB went up
    page.locator("#upload-file").set_input_files(path)
    item = page.locator("li.upload[data-name='console-20mib.bin']")
    # The console notices the dropped connection and retries; the network comes back.
    expect(item).to_have_attribute("data-resumes", re.compile(r"^[1-9]"), timeout=120_000)
    expect(item.locator(".upload-status")).to_contain_text("Connection lost")
    assert console.proxy.cuts == 1
    console.proxy.restore()
    expect(item).to_have_attribute("data-state", "done", timeout=120_000)
    shot(page, "upload")
    expect(item.locator(".upload-status")).to_contain_text("resumed")
    # It resumed where the ingester's HEAD said, not from zero.
    assert console.proxy.sent_up < UPLOAD_SIZE + 10 * MIB
    file_id = item.get_attribute("data-file-id")
    assert file_id
    stored = httpx.get(
        f"{console.query.url}/api/v1/files/{file_id}",
        headers={"Authorization": f"Bearer {console.system.admin_token()}"},
        timeout=30,
    )
    assert stored.status_code == 200, stored.text
    body = stored.json()
    assert body["size"] == UPLOAD_SIZE
    assert body["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert body["tags"] == ["console-test", "big"]
    console.uploaded.update(body, sha256=hashlib.sha256(data).hexdigest())


def test_search_then_detail(page: Page, console: Console) -> None:
    uploaded = console.uploaded
    assert uploaded, "the upload test runs first"
    go(page, "#/files", "Files")
    page.get_by_label("File name contains").fill("console-20mib")
    page.get_by_label("Tags (comma-separated, all required)").fill("console-test")
    page.get_by_label("Min size (bytes)").fill(str(UPLOAD_SIZE))
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.get_by_role("region", name="Search results")
    expect(results.get_by_role("row")).to_have_count(2)  # header + the file
    expect(page.locator("#results")).to_contain_text("1\u20131 of 1")
    # Sorting by size asks the query module again (the order toggles).
    page.get_by_role("button", name="Sort by Size").click()
    expect(page.get_by_role("button", name="Sort by Size")).to_contain_text("▼")
    shot(page, "files")
    results.get_by_role("link", name="console-20mib.bin").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("console-20mib.bin")
    expect(page.locator("#checksum")).to_have_text(uploaded["checksum"])
    copies = page.get_by_role("region", name="Copies")
    expect(copies).to_contain_text(uploaded["storage_element_id"])
    expect(page.get_by_role("region", name="History")).to_be_visible()
    if uploaded.get("previews"):
        expect(page.locator("#preview img")).to_be_visible()
    else:  # no preview made (no job worker here): nothing shown, no error either
        expect(page.locator("#preview img")).to_have_count(0)
    expect(page.locator("#error")).to_be_hidden()
    shot(page, "file-detail")


def test_signed_link_copied_then_opened_without_a_token(
    page: Page, browser: Browser, console: Console
) -> None:
    file_id = console.uploaded["file_id"]
    go(page, f"#/file/{file_id}", "console-20mib.bin")
    page.get_by_label("Link expires in").select_option("3600")
    page.get_by_role("button", name="Create signed link").click()
    link = page.locator("#signed-link")
    expect(link).to_be_visible()
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#link [role=status]")).to_have_text("Copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == link.get_attribute("href")
    assert "/api/v1/links/" in copied
    fresh = browser.new_context()  # no session storage, no token, no cookie
    _watch(fresh, console)
    try:
        other = fresh.new_page()
        other.goto(f"{console.system.admin.url}/console/")  # any loopback page to start from
        with other.expect_download() as download:
            other.evaluate("u => { location.href = u; }", copied)
        saved = download.value.path()
        digest = hashlib.sha256(Path(saved).read_bytes()).hexdigest()
        assert digest == console.uploaded["sha256"]
    finally:
        fresh.close()


def test_download_then_finalize(page: Page, console: Console) -> None:
    file_id = console.uploaded["file_id"]
    go(page, f"#/file/{file_id}", "console-20mib.bin")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    assert download.value.suggested_filename == "console-20mib.bin"
    digest = hashlib.sha256(Path(download.value.path()).read_bytes()).hexdigest()
    assert digest == console.uploaded["sha256"]
    # The temporary upload made permanent, after a confirmation.
    page.get_by_role("button", name="Finalize").click()
    page.get_by_role("dialog").get_by_role("button", name="Finalize").click()
    expect(page.locator("dl.props")).to_contain_text("permanent")
    expect(page.get_by_role("button", name="Finalize")).to_have_count(0)
    expect(page.locator("#error")).to_be_hidden()


def test_change_an_se_mode_with_confirmation(page: Page, console: Console) -> None:
    se = console.mode_se
    go(page, "#/storage", "Storage elements")
    expect(page.locator(f"[data-mode='{se}']")).to_have_text("rw")
    expect(
        page.get_by_role("region", name="Storage elements").locator("meter").first
    ).to_be_visible()
    shot(page, "storage-elements")
    page.locator(f"[data-mode-select='{se}']").select_option("ro")
    row = page.get_by_role("row").filter(has=page.locator(f"[data-mode='{se}']"))
    row.get_by_role("button", name="Change").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("to ro")
    # Cancel changes nothing.
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator(f"[data-mode='{se}']")).to_have_text("rw")
    row.get_by_role("button", name="Change").click()
    page.get_by_role("dialog").get_by_role("button", name="Change mode").click()
    expect(page.locator("#mode-result")).to_contain_text("rw → ro")
    expect(page.locator(f"[data-mode='{se}']")).to_have_text("ro")
    with console.system.admin.client(console.system.admin_token()) as c:
        assert c.get(f"/api/v1/storage-elements/{se}").json()["mode"] == "ro"
    # A refused transition shows the envelope's message (ro -> edit is not allowed).
    page.locator(f"[data-mode-select='{se}']").select_option("edit")
    row.get_by_role("button", name="Change").click()
    page.get_by_role("dialog").get_by_role("button", name="Change mode").click()
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).not_to_contain_text("Traceback")
    assert page.locator("#error").inner_text().strip()


def test_service_account_secret_is_shown_once(page: Page, console: Console) -> None:
    go(page, "#/accounts", "Users & accounts")
    form = page.get_by_role("form", name="New service account")
    form.get_by_label("Name").fill("console-made")
    form.get_by_label("files:read").check()
    form.get_by_role("button", name="Create service account").click()
    secret = page.locator("#new-secret")
    expect(secret).to_be_visible()
    shot(page, "service-account-secret")
    client_id = page.locator("#new-client-id").inner_text()
    value = secret.inner_text()
    # It is the real secret: it gets a token.
    console.system.admin.client_grant(client_id, value)
    page.get_by_role("button", name="I have stored it").click()
    expect(page.locator("#secret-once")).to_have_count(0)
    go(page, "#/files", "Files")
    go(page, "#/accounts", "Users & accounts")
    expect(page.get_by_role("region", name="Service accounts")).to_contain_text("console-made")
    assert value not in page.content()


def test_audit_log_verifies(page: Page, console: Console) -> None:
    go(page, "#/audit", "Audit log")
    expect(page.get_by_role("region", name="Audit entries")).to_contain_text("storage_element.mode")
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#verify-result")).to_contain_text("Chain intact")
    shot(page, "audit")


def test_other_operator_pages_render(page: Page, console: Console) -> None:
    for route, heading, region in (
        ("#/quarantine", "Quarantine", "Quarantined items"),
        ("#/jobs", "Jobs", "Jobs"),
        ("#/keys", "Signing keys", "Signing keys"),
    ):
        go(page, route, heading)
        expect(page.get_by_role("region", name=region)).to_be_visible()
        expect(page.locator("#error")).to_be_hidden()
        shot(page, route.strip("#/"))


def test_phone_width(page: Page, console: Console) -> None:
    page.set_viewport_size({"width": 375, "height": 812})
    try:
        for route, heading in (("#/files", "Files"), ("#/storage", "Storage elements")):
            go(page, route, heading)
            # Nothing wider than the screen: wide tables scroll inside their own region.
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{route} is {width}px wide"
            expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        go(page, "#/files", "Files")
        button = page.get_by_role("button", name="Search", exact=True)
        button.scroll_into_view_if_needed()
        expect(button).to_be_in_viewport()
        box = button.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 375
        shot(page, "phone-files")
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_keyboard_only(page: Page, console: Console) -> None:
    # A fresh load of the page (the tab keeps its session): focus starts at the top.
    go(page, "#/files", "Files")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Files")
    # Landmarks a screen reader lists.
    expect(page.get_by_role("banner")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_role("main")).to_be_visible()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")  # focus is visible
    # Tab to the navigation's "Storage elements" link and follow it with Enter.
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Storage elements":
            break
    else:
        pytest.fail("Tab never reached the Storage elements link")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Storage elements")
    # Into the page: the first mode select is reachable and operable from the keyboard.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.modeSelect || ''"):
            break
    else:
        pytest.fail("Tab never reached a mode select")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Change"


def test_console_pages_carry_a_csp_without_inline_script(console: Console) -> None:
    base = console.system.admin.url
    for path in ("/console/", "/console/callback", "/console/static/app.js"):
        r = httpx.get(base + path, timeout=30)
        assert r.status_code == 200, path
        policy = r.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
    assert httpx.get(base + "/console/static/../settings.py", timeout=30).status_code == 404
    assert httpx.get(base + "/console/static/nope.js", timeout=30).json()["error"]["code"] == (
        "NOT_FOUND"
    )
    vendored = httpx.get(base + "/console/static/vendor/tus-js-client/tus.min.js", timeout=30)
    assert vendored.status_code == 200
    assert vendored.headers["content-type"].startswith("text/javascript")
    config = httpx.get(base + "/console/config.json", timeout=30).json()
    assert config["client_id"] == "console"
    assert config["ingester_url"] == f"http://127.0.0.1:{console.proxy.port}"
    assert config["query_url"] == console.query.url
