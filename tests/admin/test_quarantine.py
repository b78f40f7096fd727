"""The admin's quarantine across SEs against real processes (issue 15, docs/admin.md):
two SEs, a copy spoiled behind one's back and quarantined by a deep reconcile; each
item's state; restore (a repair.file job, then restored by the worker) and purge (with
confirmation); refusals; an SE that is down; the audit entries."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from artstore.jobs.queue import libpq_url
from tests.support.jobs import QUIET_SCHEDULES, wait_for
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, system_of_its_own

pytestmark = pytest.mark.process

Q = "/api/v1/quarantine"
# Only what a test queues runs: every schedule off.
WORKER_ENV = QUIET_SCHEDULES


@pytest.fixture(scope="module")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    with system_of_its_own(request, tmp_path_factory, "quarantine") as sys_:
        yield sys_


@pytest.fixture(scope="module")
def pair(system: System) -> tuple[StorageElementUnderTest, StorageElementUnderTest]:
    return system.add_se("rw"), system.add_se("rw")


@pytest.fixture(scope="module")
def ingester(system: System, pair: Any) -> ServiceProcess:
    return system.start_ingester()  # two copies of a permanent file: one on each SE


def upload(system: System, ig: ServiceProcess, data: bytes) -> str:
    r = httpx.put(
        f"{ig.url}/api/v1/files/upload",
        params={"filename": "q.bin", "retention_policy": "permanent"},
        content=data,
        headers={"Authorization": f"Bearer {system.user_token()}"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["file_id"])


def spoil(system: System, se: StorageElementUnderTest, file_id: str) -> None:
    """Flip a byte of ``se``'s copy; a deep reconcile quarantines it."""
    with psycopg.connect(libpq_url(system.db.url)) as conn:
        row = conn.execute(
            "SELECT storage_path FROM catalog.files WHERE file_id = %s AND storage_element_id = %s",
            (file_id, se.id),
        ).fetchone()
    assert row is not None
    blob = se.data_dir / "files" / row[0]
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    with se.client() as c:
        r = c.post("/api/v1/maintenance/reconcile", params={"deep": "true"})
    assert r.status_code == 200, r.text
    assert file_id in {i.get("file_id") for i in r.json()["issues"]}


def listing(system: System, token: str | None = None, **params: Any) -> dict[str, Any]:
    with system.admin.client(token or system.admin_token()) as c:
        r = c.get(Q, params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return dict(r.json())


def item_of(system: System, se_id: str, file_id: str) -> dict[str, Any]:
    page = listing(system, storage_element_id=se_id)
    (item,) = [i for i in page["items"] if i["file_id"] == file_id]
    return item


def item_id(entry: str) -> str:
    return base64.urlsafe_b64encode(entry.encode()).decode().rstrip("=")


def audit(system: System, action: str) -> list[dict[str, Any]]:
    with system.admin.client(system.admin_token()) as c:
        r = c.get("/api/v1/audit", params={"action": action, "limit": 1000})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_states_restore_then_purge(system: System, pair: Any, ingester: ServiceProcess) -> None:
    a, b = pair
    data = os.urandom(200_000)
    damaged = upload(system, ingester, data)
    lost = upload(system, ingester, os.urandom(5000))
    spoil(system, b, damaged)
    for se in (a, b):
        spoil(system, se, lost)

    page = listing(system)
    assert page["unreachable"] == []
    mine = {(i["storage_element_id"], i["file_id"]): i for i in page["items"]}
    item = mine[(b.id, damaged)]
    assert (item["state"], item["healthy_copies"], item["repair_job_id"]) == ("damaged", 1, None)
    assert item["reason"] == "checksum_mismatch" and item["size"] > len(data)
    for se in (a, b):
        assert mine[(se.id, lost)]["state"] == "unrecoverable"
    # Pages over the SEs: every item once.
    pages = [listing(system, limit=1, offset=n) for n in range(page["total"])]
    assert sorted((p["items"][0]["storage_element_id"], p["items"][0]["item"]) for p in pages) == (
        sorted((i["storage_element_id"], i["item"]) for i in page["items"])
    )

    with system.admin.client(system.admin_token()) as c:
        lost_item = mine[(a.id, lost)]["item"]
        r = c.post(f"{Q}/{a.id}/{lost_item}/restore")
        assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT", r.text
        r = c.post(f"{Q}/{b.id}/{item['item']}/restore")
        assert r.status_code == 202, r.text
        job = r.json()
        assert (job["file_id"], job["already_queued"]) == (damaged, False)
        again = c.post(f"{Q}/{b.id}/{item['item']}/restore").json()
        assert (again["job_id"], again["already_queued"]) == (job["job_id"], True)
        run = c.get(f"/api/v1/jobs/{job['job_id']}").json()
        assert run["kind"] == "repair.file" and run["args"] == {
            "file_id": damaged,
            "prefer_storage_element_id": b.id,
        }
    restoring = item_of(system, b.id, damaged)
    assert (restoring["state"], restoring["repair_job_id"]) == ("restoring", job["job_id"])

    worker = system.start_worker(**WORKER_ENV)
    wait_for("restored", lambda: item_of(system, b.id, damaged)["state"] == "restored")
    with b.client() as c:
        r = c.get(f"/api/v1/files/{damaged}/download")
    assert r.status_code == 200 and hashlib.sha256(r.content).digest() == (
        hashlib.sha256(data).digest()
    )
    worker.stop()

    url = f"{Q}/{b.id}/{item['item']}/purge"
    with system.admin.client(system.admin_token()) as c:
        for body in (None, {}, {"confirm": "yes"}, {"confirm": item["item"] + "x"}):
            r = c.post(url, json=body)
            assert r.status_code == 400, (body, r.text)
        assert item_of(system, b.id, damaged)["item"] == item["item"]  # nothing purged
        r = c.post(url, json={"confirm": item["item"]})
        assert r.status_code == 200, r.text
        assert r.json()["bytes_freed"] == item["size"]
        assert c.post(url, json={"confirm": item["item"]}).status_code == 404
    assert [i for i in listing(system)["items"] if i["item"] == item["item"]] == []
    with b.client() as c:  # the restored copy is untouched by the purge
        assert c.get(f"/api/v1/files/{damaged}").status_code == 200

    restores = audit(system, "quarantine.restore")
    assert {(e["target_id"], e["outcome"]) for e in restores} >= {
        (f"{b.id}/{item['item']}", "success"),
        (f"{a.id}/{lost_item}", "failure"),
    }
    assert any(e["details"].get("job_id") == job["job_id"] for e in restores)
    purges = audit(system, "quarantine.purge")
    assert [(e["target_id"], e["outcome"]) for e in purges if e["outcome"] == "success"] == [
        (f"{b.id}/{item['item']}", "success")
    ]
    assert any(e["outcome"] == "failure" for e in purges)  # the second, refused by the SE


def test_refusals(system: System, pair: Any) -> None:
    a, _ = pair
    some = f"{Q}/{a.id}/MjAyNg/restore"
    with httpx.Client(base_url=system.admin.url, timeout=30) as anon:
        assert anon.get(Q).status_code == 401
        assert anon.post(some).status_code == 401
        bad = {"Authorization": "Bearer not-a-token"}
        assert anon.get(Q, headers=bad).status_code == 401
    reader = system.issuer.token("admin:read storage:read")
    assert listing(system, reader)["unreachable"] == []
    with system.admin.client(reader) as c:
        assert c.post(some).status_code == 403
        assert c.post(f"{Q}/{a.id}/MjAyNg/purge", json={"confirm": "MjAyNg"}).status_code == 403
    with system.admin.client(system.user_token()) as c:
        assert c.get(Q).status_code == 403
    with system.admin.client(system.admin_token()) as c:
        for item in ("a*b", "x" * 1401, "a=b", "..%2F..%2Fx"):
            r = c.post(f"{Q}/{a.id}/{item}/restore")
            assert r.status_code in (400, 404), (item, r.text)
        assert c.post(f"{Q}/{a.id}/a*b/restore").json()["error"]["code"] == "VALIDATION_ERROR"
        # Well formed, but no entry the SE could have made: the SE says 400.
        r = c.post(f"{Q}/{a.id}/MjAyNg/restore")
        assert r.status_code == 400, r.text
        unknown = item_id("2026/12/03/10/x.20261203T101010123456")
        assert c.post(f"{Q}/{a.id}/{unknown}/restore").status_code == 404
        assert c.post(f"{Q}/se-nowhere/{unknown}/restore").status_code == 404
        r = c.post(f"{Q}/se-nowhere/{unknown}/purge", json={"confirm": unknown})
        assert r.status_code == 404
        assert c.get(Q, params={"storage_element_id": "se-nowhere"}).status_code == 404


def test_an_se_that_is_down_is_listed_unreachable(system: System, pair: Any) -> None:
    down = system.add_se("rw")
    down.process.stop()
    try:
        page = listing(system)
        assert [u["storage_element_id"] for u in page["unreachable"]] == [down.id]
        assert page["unreachable"][0]["reason"]
        assert all(i["storage_element_id"] != down.id for i in page["items"])
    finally:
        system.unregister(down)
    assert listing(system)["unreachable"] == []
