"""A storage element's quarantine in-process: the listing (items, reasons, pages), purge,
malformed and hostile item ids, scopes and modes; on the memory backend and on disk."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from artstore.contracts.catalog import files
from artstore.storage_element.backends.quarantine_entries import entry_of, item_of
from tests.inprocess.conftest import InProcessSE, SEMaker, bearer
from tests.inprocess.helpers import assert_error, upload
from tests.support.issuer import TestIssuer

Q = "/api/v1/maintenance/quarantine"


def flip(se: InProcessSE, storage_path: str) -> None:
    """Spoil one byte of a stored blob, behind the SE's back."""
    if se.backend is not None:
        blob = bytearray(se.backend.blobs[storage_path])
        blob[0] ^= 0xFF
        se.backend.blobs[storage_path] = bytes(blob)
        return
    path = se.node.layout.blob_path(storage_path)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))


async def spoil(se: InProcessSE, n: int) -> list[dict[str, Any]]:
    """``n`` uploaded files with a flipped byte, quarantined by a deep reconcile."""
    metas = [await upload(se.client, f"file {i} ".encode() * 50, f"q{i}.txt") for i in range(n)]
    for meta in metas:
        meta["storage_path"] = (await se.node.store.get(meta["file_id"])).storage_path
        flip(se, meta["storage_path"])
    r = await se.client.post("/api/v1/maintenance/reconcile", params={"deep": "true"})
    assert r.status_code == 200, r.text
    assert sorted(i["file_id"] for i in r.json()["issues"]) == sorted(m["file_id"] for m in metas)
    return metas


async def rows_of(se: InProcessSE, file_id: str) -> list[Any]:
    repo = se.node.catalog.repo
    assert repo is not None
    async with repo.engine.connect() as conn:
        stmt = select(files.c.quarantined_at, files.c.quarantine_reason).where(
            files.c.storage_element_id == se.id, files.c.file_id == file_id
        )
        return list((await conn.execute(stmt)).all())


async def settled(se: InProcessSE, file_id: str) -> None:
    """Wait until the catalog row (written after the answer) is the live copy's."""
    for _ in range(300):
        if [r.quarantined_at for r in await rows_of(se, file_id)] == [None]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(await rows_of(se, file_id))


@pytest.fixture(params=[False, True], ids=["memory", "disk"])
def disk(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def test_listing_shows_each_quarantined_copy_with_its_reason(
    make_se: SEMaker, disk: bool
) -> None:
    async with make_se("rw", disk=disk) as se:
        assert (await se.client.get(Q)).json() == {
            "items": [], "total": 0, "limit": 100, "offset": 0, "has_more": False
        }  # fmt: skip
        healthy = await upload(se.client, b"fine", "fine.txt")
        (meta,) = await spoil(se, 1)
        r = await se.client.get(Q)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["total"] == 1 and not page["has_more"]
        (item,) = page["items"]
        assert item["file_id"] == meta["file_id"]
        assert item["path"] == meta["storage_path"]
        assert item["reason"] == "checksum_mismatch"
        assert item["size"] > meta["size"]  # the blob and its attr
        assert entry_of(item["item"]).startswith(meta["storage_path"] + ".")
        assert (await se.client.get(f"{Q}/{item['item']}")).json() == item
        assert (await se.client.get(f"/api/v1/files/{healthy['file_id']}")).status_code == 200
        assert [r.quarantine_reason for r in await rows_of(se, meta["file_id"])] == [
            "checksum_mismatch"
        ]


async def test_pages_cover_every_item_once(make_se: SEMaker, disk: bool) -> None:
    async with make_se("rw", disk=disk) as se:
        metas = await spoil(se, 5)
        seen: list[str] = []
        for offset in range(0, 6, 2):
            page = (await se.client.get(Q, params={"limit": 2, "offset": offset})).json()
            assert page["total"] == 5 and page["offset"] == offset
            assert page["has_more"] == (offset + 2 < 5)
            seen += [i["file_id"] for i in page["items"]]
        assert sorted(seen) == sorted(m["file_id"] for m in metas)
        beyond = (await se.client.get(Q, params={"offset": 10})).json()
        assert beyond["items"] == [] and beyond["total"] == 5
        for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
            assert_error(await se.client.get(Q, params=bad), 400, "VALIDATION_ERROR")


async def test_purge_removes_the_bytes_and_the_marked_row(make_se: SEMaker, disk: bool) -> None:
    async with make_se("rw", disk=disk) as se:
        first, second = await spoil(se, 2)
        items = {i["file_id"]: i for i in (await se.client.get(Q)).json()["items"]}
        gone = items[first["file_id"]]
        r = await se.client.delete(f"{Q}/{gone['item']}")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "item": gone["item"],
            "path": first["storage_path"],
            "bytes_freed": gone["size"],
        }  # fmt: skip
        left = (await se.client.get(Q)).json()
        assert [i["file_id"] for i in left["items"]] == [second["file_id"]]
        assert await rows_of(se, first["file_id"]) == []
        assert len(await rows_of(se, second["file_id"])) == 1  # another item's row stays
        assert_error(await se.client.delete(f"{Q}/{gone['item']}"), 404, "NOT_FOUND")
        if se.backend is not None:
            assert not any(first["storage_path"] in k for k in se.backend.quarantined)
            assert len(se.backend.quarantine_info) == 1
        else:
            qdir = se.node.layout.quarantine_dir
            name = first["storage_path"].rsplit("/", 1)[-1]
            assert not [p for p in qdir.rglob("*") if p.is_file() and name in p.name]


async def test_a_new_copy_of_the_id_clears_the_mark_and_purge_keeps_its_row(
    make_se: SEMaker, disk: bool
) -> None:
    """A restore writes the file again under its id: the row describes that copy now
    (not quarantined), and purging the old item leaves it alone."""
    async with make_se("rw", disk=disk) as se:
        (meta,) = await spoil(se, 1)
        fid = meta["file_id"]
        assert (await se.client.get(f"/api/v1/files/{fid}")).status_code == 404
        again = await upload(se.client, b"file 0 " * 50, "q0.txt", file_id=fid)
        assert again["file_id"] == fid
        await settled(se, fid)
        assert (await se.client.get(f"/api/v1/files/{fid}")).status_code == 200
        (item,) = (await se.client.get(Q)).json()["items"]
        assert (await se.client.delete(f"{Q}/{item['item']}")).status_code == 200
        assert [r.quarantined_at for r in await rows_of(se, fid)] == [None]
        assert (await se.client.get(f"/api/v1/files/{fid}")).status_code == 200


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "item",
    [
        _b64("../../etc/passwd.20261203T101010123456"),
        _b64("/etc/passwd.20261203T101010123456"),
        _b64("2026/12/03/10/../../x.20261203T101010123456"),
        _b64("2026/12/03/10/x"),  # no stamp
        _b64("2026/12/03/10/x.20261399T101010123456"),  # no such date
        _b64("2026/12/03/10/\x01x.20261203T101010123456"),
        _b64("2026/12/03/10/x.20261203T101010123456") + "=",
        "not*base64",
        "A" * 1401,
        base64.urlsafe_b64encode(b"\xff\xfe.20261203T101010123456").decode().rstrip("="),
    ],
)
async def test_malformed_item_ids_are_refused(se: InProcessSE, item: str) -> None:
    r = await se.client.delete(f"{Q}/{item}")
    assert_error(r, 400, "VALIDATION_ERROR")


async def test_unknown_item_is_404(se: InProcessSE) -> None:
    item = item_of("2026/12/03/10/nothing_here_20261203T101010_0000aaaa.20261203T101010123456")
    assert_error(await se.client.delete(f"{Q}/{item}"), 404, "NOT_FOUND")
    assert_error(await se.client.get(f"{Q}/{item}"), 404, "NOT_FOUND")
    assert_error(
        await se.client.get(f"{Q}/{_b64('../x.20261203T101010123456')}"), 400, "VALIDATION_ERROR"
    )
    # A slash smuggled in escaped never reaches the route (no item can hold one).
    await spoil(se, 1)
    for sneaky in ("%2E%2E%2Fquarantine", "..%2F..%2Fmode.json"):
        assert_error(await se.client.delete(f"{Q}/{sneaky}"), 404, "NOT_FOUND")
    assert (await se.client.get(Q)).json()["total"] == 1


async def test_scopes(se: InProcessSE, issuer: TestIssuer) -> None:
    await spoil(se, 1)
    item = (await se.client.get(Q)).json()["items"][0]["item"]

    async def as_(scopes: str, method: str, url: str) -> httpx.Response:
        return await se.client.request(method, url, headers=bearer(issuer, scopes))

    assert (await as_("storage:read", "GET", Q)).status_code == 200
    assert_error(await as_("files:read files:write", "GET", Q), 403, "FORBIDDEN")
    assert_error(await as_("storage:read", "DELETE", f"{Q}/{item}"), 403, "FORBIDDEN")
    r = await se.client.get(Q, headers={"Authorization": ""})
    assert r.status_code == 401
    assert (await as_("storage:write", "DELETE", f"{Q}/{item}")).status_code == 200


@pytest.mark.parametrize("path", [["ro"], ["ro", "ar"]], ids=["ro", "ar"])
async def test_read_only_and_archive_modes_may_purge(make_se: SEMaker, path: list[str]) -> None:
    async with make_se("rw") as se:
        await spoil(se, 1)
        for target in path:
            r = await se.client.post("/api/v1/mode/transition", json={"target_mode": target})
            assert r.status_code == 200, r.text
        item = (await se.client.get(Q)).json()["items"][0]["item"]
        assert (await se.client.delete(f"{Q}/{item}")).status_code == 200
        assert (await se.client.get(Q)).json()["total"] == 0
