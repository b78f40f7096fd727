"""Crash at every fault-injection step of each write path, restart, check the result.

A crash is ``os._exit`` at the named step (SE_CRASH_AT). After a normal restart:
an acknowledged write is complete and byte-exact, an unacknowledged one is complete
or absent (the step decides which, so the tests say exactly which), nothing is left
in tmp/, and no blob is left without its attr.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from artstore.storage_element.faults import (
    CRASH_EXIT_CODE,
    DELETE_STEPS,
    EXPIRE_STEPS,
    MODE_STEPS,
    PREVIEW_STEPS,
    RECLAIM_STEPS,
    UPDATE_STEPS,
    UPLOAD_STEPS,
)
from tests.conftest import WRITE_PATH_ENV, SEFactory
from tests.storage_element.test_previews import JPEG, WEBP
from tests.support.se import StorageElementUnderTest, sha256_hex

PAYLOAD = os.urandom(300 * 1024)

# Steps at or after the attr's rename (the commit point) must roll forward.
UPLOAD_DONE = {
    "upload.after_attr_rename",
    "upload.after_dir_fsync",
    "upload.after_commit",
    "upload.after_catalog",
}
CHANGE_DONE = {"after_attr_rename", "after_commit"}
PREVIEW_DONE = {"after_attr_rename", "after_old_removed", "after_commit"}


def _crashing(se_factory: SEFactory, mode: str, step: str) -> StorageElementUnderTest:
    """An SE that runs normally until a request reaches ``step``."""
    return se_factory(mode, SE_CRASH_AT=step)


def _crash(se: StorageElementUnderTest, request: httpx.Request) -> None:
    """Send ``request``, see the SE die at its crash step, restart it normally."""
    with se.client() as c, pytest.raises(httpx.TransportError):
        c.send(request)
    assert se.process.wait_exit() == CRASH_EXIT_CODE, se.process.log()
    se.start(SE_CRASH_AT="")


def _assert_clean(se: StorageElementUnderTest) -> None:
    assert se.tmp_entries() == []
    assert se.orphan_blobs() == []


def _upload(se: StorageElementUnderTest, data: bytes = PAYLOAD) -> dict[str, object]:
    with se.client() as c:
        r = c.post("/api/v1/files", content=data, params={"filename": "doc.bin"})
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.mark.parametrize("step", UPLOAD_STEPS)
def test_upload_crash(se_factory: SEFactory, step: str, write_path: str) -> None:
    se = se_factory("rw", SE_CRASH_AT=step, **WRITE_PATH_ENV[write_path])
    with se.client() as c:
        req = c.build_request(
            "POST", "/api/v1/files", content=PAYLOAD, params={"filename": "doc.bin"}
        )
    _crash(se, req)

    _assert_clean(se)
    with se.client() as c:
        listed = c.get("/api/v1/files").json()
        if step in UPLOAD_DONE:
            assert listed["total"] == 1, listed
            item = listed["items"][0]
            assert item["checksum"] == f"sha256:{sha256_hex(PAYLOAD)}"
            body = c.get(f"/api/v1/files/{item['file_id']}/download")
            assert body.status_code == 200 and body.content == PAYLOAD
            assert len(se.attrs()) == 1 and len(se.blobs()) == 1
        else:
            assert listed["total"] == 0, listed
            assert se.attrs() == [] and se.blobs() == []


@pytest.mark.parametrize("step", UPDATE_STEPS)
def test_update_crash(se_factory: SEFactory, step: str) -> None:
    se = _crashing(se_factory, "rw", step)
    file_id = _upload(se)["file_id"]
    with se.client() as c:
        req = c.build_request(
            "PATCH", f"/api/v1/files/{file_id}", json={"description": "second version"}
        )
    _crash(se, req)

    _assert_clean(se)
    done = step.split(".", 1)[1] in CHANGE_DONE
    with se.client() as c:
        meta = c.get(f"/api/v1/files/{file_id}").json()
        assert meta["version"] == (2 if done else 1)
        assert meta["description"] == ("second version" if done else "")
        listed = c.get("/api/v1/files").json()["items"]
        assert [m["version"] for m in listed] == [meta["version"]]  # the catalog agrees
        body = c.get(f"/api/v1/files/{file_id}/download")
        assert body.content == PAYLOAD


@pytest.mark.parametrize("step", DELETE_STEPS)
def test_delete_crash(se_factory: SEFactory, step: str) -> None:
    se = _crashing(se_factory, "edit", step)
    file_id = _upload(se)["file_id"]
    with se.client() as c:
        req = c.build_request("DELETE", f"/api/v1/files/{file_id}")
    _crash(se, req)

    _assert_clean(se)
    done = step.split(".", 1)[1] in CHANGE_DONE
    with se.client() as c:
        meta = c.get(f"/api/v1/files/{file_id}").json()
        assert meta["status"] == ("deleted" if done else "active")
        download = c.get(f"/api/v1/files/{file_id}/download")
        assert download.status_code == (410 if done else 200)
        deleted = c.get("/api/v1/files", params={"status": "deleted"}).json()
        assert deleted["total"] == (1 if done else 0)


@pytest.mark.parametrize("step", PREVIEW_STEPS)
def test_preview_put_crash(se_factory: SEFactory, step: str) -> None:
    """Replacing a preview: a crash before the attr's rename leaves the old preview
    served and no trace of the new one; at or after it, the new one and no trace of
    the old (recovery finishes the removal). The original is never touched."""
    se = se_factory("rw")
    file_id = _upload(se)["file_id"]
    url = f"/api/v1/files/{file_id}/previews/256"
    with se.client() as c:
        r = c.put(url, content=WEBP, headers={"Content-Type": "image/webp"})
        assert r.status_code == 201, r.text
    se.restart(SE_CRASH_AT=step)  # the first preview is written: now crash on the next
    with se.client() as c:
        req = c.build_request("PUT", url, content=JPEG, headers={"Content-Type": "image/jpeg"})
    _crash(se, req)

    _assert_clean(se)
    done = step.split(".", 1)[1] in PREVIEW_DONE
    with se.client() as c:
        meta = c.get(f"/api/v1/files/{file_id}").json()
        assert meta["previews"] == [256] and meta["version"] == (3 if done else 2)
        got = c.get(url)
        assert got.status_code == 200 and got.content == (JPEG if done else WEBP)
        assert got.headers["content-type"] == ("image/jpeg" if done else "image/webp")
        listed = c.get("/api/v1/files").json()["items"]
        assert [m["version"] for m in listed] == [meta["version"]]  # the catalog agrees
        assert c.get(f"/api/v1/files/{file_id}/download").content == PAYLOAD
    assert len(se.sidecars()) == 1  # never both, never none


@pytest.mark.parametrize("step", [s for s in PREVIEW_STEPS if "sidecar_write" not in s])
def test_preview_delete_crash(se_factory: SEFactory, step: str) -> None:
    se = se_factory("rw")
    file_id = _upload(se)["file_id"]
    url = f"/api/v1/files/{file_id}/previews/256"
    with se.client() as c:
        r = c.put(url, content=WEBP, headers={"Content-Type": "image/webp"})
        assert r.status_code == 201, r.text
    se.restart(SE_CRASH_AT=step)  # the first preview is written: now crash on the next
    with se.client() as c:
        req = c.build_request("DELETE", url)
    _crash(se, req)

    _assert_clean(se)
    done = step.split(".", 1)[1] in PREVIEW_DONE
    with se.client() as c:
        meta = c.get(f"/api/v1/files/{file_id}").json()
        assert meta["previews"] == ([] if done else [256])
        assert c.get(url).status_code == (404 if done else 200)
        assert c.get(f"/api/v1/files/{file_id}/download").content == PAYLOAD
    assert len(se.sidecars()) == (0 if done else 1)


@pytest.mark.parametrize("step", DELETE_STEPS)
def test_delete_with_previews_crash(se_factory: SEFactory, step: str) -> None:
    """A delete drops the file's previews after its commit point: never a tombstone
    still naming them, never a live file that lost them."""
    se = se_factory("edit")
    file_id = _upload(se)["file_id"]
    url = f"/api/v1/files/{file_id}/previews/256"
    with se.client() as c:
        r = c.put(url, content=WEBP, headers={"Content-Type": "image/webp"})
        assert r.status_code == 201, r.text
    se.restart(SE_CRASH_AT=step)
    with se.client() as c:
        req = c.build_request("DELETE", f"/api/v1/files/{file_id}")
    _crash(se, req)

    _assert_clean(se)
    done = step.split(".", 1)[1] in CHANGE_DONE
    with se.client() as c:
        meta = c.get(f"/api/v1/files/{file_id}").json()
        assert meta["status"] == ("deleted" if done else "active")
        assert meta["previews"] == ([] if done else [256])
        assert c.get(url).status_code == (410 if done else 200)
    assert len(se.sidecars()) == (0 if done else 1)


@pytest.mark.parametrize("step", MODE_STEPS)
def test_mode_crash(se_factory: SEFactory, step: str) -> None:
    se = _crashing(se_factory, "rw", step)
    with se.client() as c:
        req = c.build_request("POST", "/api/v1/mode/transition", json={"target_mode": "ro"})
    _crash(se, req)
    mode = httpx.get(f"{se.url}/api/v1/info").json()["mode"]
    assert mode == ("rw" if step == "mode.after_begin" else "ro")
    _assert_clean(se)


def test_acknowledged_upload_survives_kill(se_factory: SEFactory) -> None:
    se = se_factory("rw")
    file_ids = [_upload(se, PAYLOAD[: 1000 * i])["file_id"] for i in range(1, 6)]
    se.process.kill()  # SIGKILL right after the 201s
    se.start()
    with se.client() as c:
        for i, file_id in enumerate(file_ids, start=1):
            r = c.get(f"/api/v1/files/{file_id}/download")
            assert r.status_code == 200 and r.content == PAYLOAD[: 1000 * i]
    _assert_clean(se)


def test_torn_wal_tail_recovers(se_factory: SEFactory) -> None:
    se = se_factory("rw")
    first = _upload(se)["file_id"]
    se.process.kill()
    segments = sorted((se.data_dir / "wal").glob("*.wal"))
    assert segments, "the journal has a segment"
    with open(segments[-1], "ab") as f:
        f.write(b"\xff\x00\x00\x00\x12\x34")  # a record header cut short by the crash
    se.start()
    with se.client() as c:
        assert c.get(f"/api/v1/files/{first}/download").content == PAYLOAD
        second = c.post("/api/v1/files", content=b"after", params={"filename": "b.txt"})
        assert second.status_code == 201
    _assert_clean(se)


def _gc_request(se: StorageElementUnderTest, days: float) -> httpx.Request:
    at = (datetime.now(UTC) + timedelta(days=days)).isoformat()
    with se.client() as c:
        return c.build_request("POST", "/api/v1/maintenance/gc", params={"now": at})


@pytest.mark.parametrize("step", EXPIRE_STEPS)
def test_gc_expire_crash(se_factory: SEFactory, step: str) -> None:
    se = se_factory("edit", SE_CRASH_AT=step, SE_ALLOW_CLOCK_OVERRIDE="true")
    with se.client() as c:
        file_id = c.post(
            "/api/v1/files", content=PAYLOAD, params={"filename": "t.bin", "ttl_days": 1}
        ).json()["file_id"]
    _crash(se, _gc_request(se, 2))

    _assert_clean(se)
    done = step.split(".", 1)[1] in CHANGE_DONE
    with se.client() as c:
        meta = c.get(f"/api/v1/files/{file_id}").json()
        assert meta["status"] == ("expired" if done else "active")
        assert meta["version"] == (2 if done else 1)


@pytest.mark.parametrize("step", RECLAIM_STEPS)
def test_gc_reclaim_crash(se_factory: SEFactory, step: str) -> None:
    se = se_factory("edit", SE_CRASH_AT=step, SE_ALLOW_CLOCK_OVERRIDE="true", SE_RECLAIM_AGE="3600")
    file_id = _upload(se)["file_id"]
    with se.client() as c:
        assert c.delete(f"/api/v1/files/{file_id}").status_code == 204
    _crash(se, _gc_request(se, 1))

    _assert_clean(se)
    with se.client() as c:
        meta = c.get(f"/api/v1/files/{file_id}")
        tombstones = c.get("/api/v1/files", params={"status": "deleted"}).json()["total"]
    if step == "reclaim.after_begin":  # the attr, the commit point, was never removed
        assert meta.json()["status"] == "deleted" and tombstones == 1
        assert len(se.attrs()) == 1 and len(se.blobs()) == 1
    else:  # recovery finishes the removal: no blob without its attr, no row
        assert meta.status_code == 404 and tombstones == 0
        assert se.attrs() == [] and se.blobs() == []
