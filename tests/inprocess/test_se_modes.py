"""A storage element's modes in-process: what each allows, the transitions and their
refusals, /info, and the maintenance endpoints' answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.inprocess.conftest import InProcessSE, SEMaker, bearer
from tests.inprocess.helpers import assert_error, download_url, upload
from tests.support.issuer import TestIssuer

ALLOWED = {
    "edit": {"upload", "download", "update", "delete", "list"},
    "rw": {"upload", "download", "update", "list"},
    "ro": {"download", "list"},
    "ar": {"list"},
}
PATH = {"edit": ("edit", []), "rw": ("rw", []), "ro": ("rw", ["ro"]), "ar": ("rw", ["ro", "ar"])}


async def transition(c: httpx.AsyncClient, target: str, **extra: Any) -> httpx.Response:
    return await c.post("/api/v1/mode/transition", json={"target_mode": target, **extra})


async def attempt(op: str, c: httpx.AsyncClient, main: dict[str, Any]) -> httpx.Response:
    fid = main["file_id"]
    if op == "upload":
        return await c.post("/api/v1/files", content=b"new", params={"filename": "n.txt"})
    if op == "download":
        return await c.get(download_url(main))
    if op == "update":
        return await c.patch(f"/api/v1/files/{fid}", json={"description": "changed"})
    if op == "delete":
        return await c.delete(f"/api/v1/files/{fid}")
    return await c.get("/api/v1/files")


@pytest.mark.parametrize("mode", list(ALLOWED))
async def test_each_mode_allows_its_operations_only(make_se: SEMaker, mode: str) -> None:
    start, path = PATH[mode]
    async with make_se(start) as se:
        c = se.client
        main = await upload(c, b"main file", "main.txt")
        for target in path:
            r = await transition(c, target)
            assert r.status_code == 200, r.text
        info = (await c.get("/api/v1/info")).json()
        assert info["mode"] == mode
        assert info["allowed_operations"] == sorted(ALLOWED[mode])
        attrs_before = dict(se.backend.attrs)
        for op in ("upload", "download", "update", "list", "delete"):
            r = await attempt(op, c, main)
            if op in ALLOWED[mode]:
                assert r.status_code in (200, 201, 204), (op, r.text)
            else:
                assert_error(r, 409, "MODE_NOT_ALLOWED")
        if not ALLOWED[mode] & {"upload", "update", "delete"}:
            assert se.backend.attrs == attrs_before  # refusals changed nothing


async def test_transition_rules(se: InProcessSE, edit_se: InProcessSE) -> None:
    c = se.client
    for target in ("ar", "rw", "edit"):
        assert_error(await transition(c, target), 409, "INVALID_TRANSITION")
    r = await transition(c, "ro")
    assert r.status_code == 200, r.text
    assert (r.json()["previous_mode"], r.json()["current_mode"]) == ("rw", "ro")
    assert_error(await transition(c, "rw"), 409, "CONFIRMATION_REQUIRED")
    assert (await transition(c, "rw", confirm=True)).status_code == 200
    assert (await c.get("/api/v1/info")).json()["mode"] == "rw"
    for target in ("edit", "rw", "ro", "ar"):
        assert_error(await transition(edit_se.client, target), 409, "INVALID_TRANSITION")
    for body in ({"target_mode": "xx"}, {}, {"target_mode": "ro", "confirm": "maybe"}):
        r = await c.post("/api/v1/mode/transition", json=body)
        assert_error(r, 400, "VALIDATION_ERROR")


async def test_transition_needs_storage_write(se: InProcessSE, issuer: TestIssuer) -> None:
    r = await se.client.post(
        "/api/v1/mode/transition", json={"target_mode": "ro"}, headers=bearer(issuer, "files:write")
    )
    assert_error(r, 403, "FORBIDDEN")
    assert (await se.client.get("/api/v1/info")).json()["mode"] == "rw"


async def test_info_counts_what_is_stored(se: InProcessSE) -> None:
    before = (await se.client.get("/api/v1/info", headers={"Authorization": ""})).json()
    assert before["mode"] == "rw"  # /info needs no token
    await upload(se.client, b"x" * 1000, "cap.bin")
    after = (await se.client.get("/api/v1/info")).json()
    assert after["capacity"]["file_count"] == before["capacity"]["file_count"] + 1
    assert after["capacity"]["used_bytes"] >= before["capacity"]["used_bytes"] + 1000


async def test_maintenance_answers(edit_se: InProcessSE) -> None:
    c = edit_se.client
    for i in range(3):
        await upload(c, b"y" * (i + 1), f"{i}.txt")
    r = await c.post("/api/v1/maintenance/reconcile")
    assert r.status_code == 200, r.text
    assert r.json()["files_checked"] == 3 and r.json()["issues"] == []
    r = await c.post("/api/v1/maintenance/gc")
    assert r.status_code == 200, r.text
    assert set(r.json()) >= {"expired", "reclaimed", "bytes_freed"}
    r = await c.get("/api/v1/maintenance/status")
    assert r.status_code == 200, r.text
    r = await c.post("/api/v1/maintenance/rebuild-index")
    assert r.status_code == 202, r.text
