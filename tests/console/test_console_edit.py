"""The console's edit form (issue 17 follow-up): a user edits the description, tags and
metadata of their own file on its detail page; the query module changes every copy.

A real browser (Debian's chromium, offline but for loopback) against a real admin, two
storage elements holding one file each and the query module; the file's owner signs in
with the console's own sign-in (code + PKCE)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.console.test_console import TIMEOUT_MS, go, sign_in
from tests.support.chromium import off_loopback, offline_chromium
from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, wait_ready

pytestmark = pytest.mark.process


@dataclass
class EditConsole:
    system: System
    query: ServiceProcess
    ses: list[StorageElementUnderTest]
    owner: dict[str, Any]
    owner_token: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.system.admin.url}/console/"

    def upload(self, name: str) -> dict[str, Any]:
        """One file on both SEs (one id), uploaded by the owner, as replicas are."""
        replica = self.system.admin.sa_token(["files:write", "storage:write"])
        out: dict[str, Any] = {}
        for se in self.ses:
            token, chosen = self.owner_token, {}
            if out:
                token = replica
                chosen = {k: out[k] for k in ("file_id", "uploaded_by", "uploaded_at")}
            r = httpx.post(
                f"{se.url}/api/v1/files",
                headers={"Authorization": f"Bearer {token}"},
                content=os.urandom(500),
                params={"filename": name, "description": "before", "tags": ["t1"], **chosen},
                timeout=30,
            )
            assert r.status_code == 201, r.text
            out = r.json()
        return out

    def attr(self, se: StorageElementUnderTest, file_id: str) -> dict[str, Any]:
        r = httpx.get(
            f"{se.url}/api/v1/files/{file_id}",
            headers={"Authorization": f"Bearer {self.owner_token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture(scope="module")
def console(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EditConsole]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_console_edit")
    system = System(tmp_path_factory.mktemp("console-edit"), db)
    try:
        ses = [system.add_se("rw"), system.add_se("rw")]
        query = system.start_query(QM_SE_CONNECT_TIMEOUT="1")
        wait_ready(query)
        admin = system.admin
        admin.process.stop()
        admin.process.start(
            extra_env={
                "AM_INGESTER_PUBLIC_URL": "http://127.0.0.1:9",  # not used here
                "AM_QUERY_PUBLIC_URL": query.url,
                "AM_CONSOLE_REDIRECT_URIS": f"{admin.url}/console/callback",
            }
        )
        owner = admin.create_user(["user"])
        token = str(admin.password_grant(owner["username"], owner["password"])["access_token"])
        yield EditConsole(system, query, ses, owner, token)
    finally:
        system.stop()
        db.drop()


@pytest.fixture(scope="module")
def page(console: EditConsole) -> Iterator[Page]:
    with offline_chromium() as browser:
        ctx = _context(browser, console)
        p = ctx.new_page()
        sign_in(p, console, console.owner["username"], console.owner["password"])  # type: ignore[arg-type]
        yield p
        ctx.close()


def _context(browser: Browser, console: EditConsole) -> BrowserContext:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.on("request", lambda r: console.requests.append(r.url))

    def on_page(p: Page) -> None:
        p.on("pageerror", lambda e: console.problems.append(f"page error: {e}"))
        p.on(
            "console",
            lambda m: (
                console.problems.append(m.text)
                if m.type == "error" and "Content Security Policy" in m.text
                else None
            ),
        )

    ctx.on("page", on_page)
    return ctx


@pytest.fixture(autouse=True)
def _nothing_leaves_loopback(console: EditConsole) -> Iterator[None]:
    yield
    assert off_loopback(console.requests) == []
    assert console.problems == []


def _open_edit(page: Page, file_id: str, name: str) -> None:
    go(page, f"#/file/{file_id}", name)
    page.get_by_role("button", name="Edit").click()
    expect(page.get_by_role("form", name="Edit file")).to_be_visible()


def test_edit_changes_every_copy(page: Page, console: EditConsole) -> None:
    name = f"edit-{uuid.uuid4().hex[:8]}.bin"
    fid = console.upload(name)["file_id"]
    _open_edit(page, fid, name)
    form = page.get_by_role("form", name="Edit file")
    expect(form.get_by_label("Description")).to_have_value("before")
    expect(form.get_by_label("Tags (one per line)")).to_have_value("t1")
    form.get_by_label("Description").fill("after, from the console\nsecond line")
    form.get_by_label("Tags (one per line)").fill("t1\nnew tag")
    form.get_by_label("Metadata (key=value, one per line)").fill("project=ArtStore\nnote=a=b")
    form.get_by_role("button", name="Save").click()
    props = page.locator("dl.props")
    expect(props).to_contain_text("after, from the console")
    expect(props).to_contain_text("t1, new tag")
    expect(page.get_by_role("region", name="Metadata")).to_contain_text("ArtStore")
    expect(page.get_by_role("form", name="Edit file")).to_have_count(0)
    expect(page.locator("#error")).to_be_hidden()
    want = {
        "description": "after, from the console\nsecond line",
        "tags": ["t1", "new tag"],
        "metadata": {"project": "ArtStore", "note": "a=b"},
    }
    for se in console.ses:
        attr = console.attr(se, fid)
        assert {k: attr[k] for k in want} == want, se.id
    # Only what changed is sent: a description edit leaves tags and metadata as they are.
    _open_edit(page, fid, name)
    page.get_by_role("form", name="Edit file").get_by_label("Description").fill("third")
    page.get_by_role("form", name="Edit file").get_by_role("button", name="Save").click()
    expect(page.locator("dl.props")).to_contain_text("third")
    for se in console.ses:
        attr = console.attr(se, fid)
        assert attr["description"] == "third" and attr["metadata"] == want["metadata"]


def test_refusals_are_shown_and_change_nothing(page: Page, console: EditConsole) -> None:
    name = f"refused-{uuid.uuid4().hex[:8]}.bin"
    fid = console.upload(name)["file_id"]
    _open_edit(page, fid, name)
    form = page.get_by_role("form", name="Edit file")
    # Not key=value: refused in the page, nothing sent.
    form.get_by_label("Metadata (key=value, one per line)").fill("no value here")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("metadata line 1 is not key=value")
    # Too large for the attr: the SE's 413 message, through the query module.
    form.get_by_label("Metadata (key=value, one per line)").fill("big=" + "v" * 3000)
    form.get_by_label("Description").fill("d" * 3000)
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_role("status")).to_have_text("Not saved.")
    expect(page.get_by_role("alert")).to_be_visible()
    for se in console.ses:
        assert console.attr(se, fid)["description"] == "before"


def test_a_copy_that_cannot_be_changed_is_named(page: Page, console: EditConsole) -> None:
    name = f"partial-{uuid.uuid4().hex[:8]}.bin"
    fid = console.upload(name)["file_id"]
    _open_edit(page, fid, name)
    down = console.ses[1]
    down.process.stop()
    try:
        form = page.get_by_role("form", name="Edit file")
        form.get_by_label("Description").fill("partly saved")
        form.get_by_role("button", name="Save").click()
        expect(form.get_by_role("status")).to_contain_text(f"Not saved on: {down.id}")
        expect(page.get_by_role("alert")).to_contain_text(down.id)
    finally:
        down.start()
    # Saving again once it is back brings every copy in step.
    page.get_by_role("form", name="Edit file").get_by_role("button", name="Save").click()
    expect(page.locator("dl.props")).to_contain_text("partly saved")
    for se in console.ses:
        assert console.attr(se, fid)["description"] == "partly saved"
