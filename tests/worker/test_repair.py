"""Repair against real processes (issue 15, docs/repair.md): a dead SE's files get their
copies back, a quarantined copy is restored, a stranded copy of a failed upload becomes
a counted replica, two workers copy each file once, and a worker killed mid-copy leaves
nothing half visible and the next run finishes."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from artstore.jobs.queue import libpq_url
from tests.support.fake_se import FakeSE, info_for
from tests.support.jobs import QUIET_SCHEDULES, wait_for
from tests.support.jobs import defer as defer_run
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, system_of_its_own

pytestmark = pytest.mark.process

# Only what a test queues runs: every schedule off; a lost run is looked for every 2 s.
WORKER_ENV = {
    **QUIET_SCHEDULES,
    "WK_LOST_CHECK_CRON": "* * * * * */2",
    "WK_STALLED_SECONDS": "3",
    "WK_OFFLINE_GRACE_SECONDS": "2",
}


@pytest.fixture
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    # A system (and catalog) per test: one test's files never need another's repairs.
    with system_of_its_own(request, tmp_path_factory, "repair") as sys_:
        yield sys_


def start_worker(system: System, **env: str) -> ServiceProcess:
    return system.start_worker(**{**WORKER_ENV, **env})


def defer(system: System, kind: str, **args: Any) -> int:
    """Queue a job as a schedule or the admin does."""
    return defer_run(system.db.url, kind, **args)


def run_of(system: System, run_id: int) -> dict[str, Any]:
    with system.admin.client(system.admin_token()) as c:
        r = c.get(f"/api/v1/jobs/{run_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def ended(system: System, run_id: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        run = run_of(system, run_id)
        return run if run["state"] in ("succeeded", "failed", "cancelled") else None

    return dict(wait_for(f"run {run_id} ended", check))


def runs(system: System, kind: str) -> list[dict[str, Any]]:
    with system.admin.client(system.admin_token()) as c:
        r = c.get("/api/v1/jobs", params={"kind": kind, "limit": 1000})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def copies(system: System, file_id: str) -> dict[str, bool]:
    """``{storage_element_id: quarantined}`` of every catalog row of ``file_id``."""
    with psycopg.connect(libpq_url(system.db.url)) as conn:
        rows = conn.execute(
            "SELECT storage_element_id, quarantined_at IS NOT NULL FROM catalog.files"
            " WHERE file_id = %s",
            (file_id,),
        ).fetchall()
    return {str(se): bool(q) for se, q in rows}


def live(system: System, file_id: str) -> set[str]:
    return {se for se, quarantined in copies(system, file_id).items() if not quarantined}


def upload(ig: ServiceProcess, token: str, data: bytes, **params: str) -> httpx.Response:
    return httpx.put(
        f"{ig.url}/api/v1/files/upload",
        params={"filename": "r.bin", "retention_policy": "permanent", **params},
        content=data,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def verified(se: StorageElementUnderTest, file_id: str, data: bytes) -> bool:
    """The SE serves ``file_id`` (its own whole-file check) with ``data``'s SHA-256."""
    with se.client() as c:
        r = c.get(f"/api/v1/files/{file_id}/download")
    assert r.status_code == 200, (se.id, file_id, r.text)
    return hashlib.sha256(r.content).hexdigest() == hashlib.sha256(data).hexdigest()


def offline(system: System, se_id: str) -> bool:
    with system.admin.client(system.admin_token()) as c:
        r = c.get(f"/api/v1/storage-elements/{se_id}")
    assert r.status_code == 200, r.text
    return bool(r.json()["status"] == "offline")


def scan_without(system: System, se_id: str) -> dict[str, Any]:
    """A repair.scan run once ``se_id``'s copies no longer count (grace over)."""

    def once() -> dict[str, Any] | None:
        run = ended(system, defer(system, "repair.scan"))
        assert run["state"] == "succeeded", run
        summary: dict[str, Any] = run["summary"]
        return summary if se_id not in summary["counted_storage_elements"] else None

    return dict(wait_for(f"a scan without {se_id}", once))


def search(query: ServiceProcess, token: str, tag: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{query.url}/api/v1/search",
        params={"tags": tag},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def metric(proc: ServiceProcess, name: str) -> float:
    text = httpx.get(f"{proc.url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_a_dead_se_s_files_get_two_healthy_copies_again(system: System) -> None:
    token = system.user_token()
    ses = [system.add_se("rw") for _ in range(3)]
    ig = system.start_ingester()  # IG_REPLICAS defaults to 2
    files: dict[str, bytes] = {}
    for i in range(100):
        data = os.urandom(2000 + 97 * i)
        r = upload(ig, token, data, filename=f"f{i}.bin")
        assert r.status_code == 201, r.text
        files[r.json()["file_id"]] = data
    by_se = {se.id: [f for f in files if se.id in live(system, f)] for se in ses}
    assert all(len(live(system, f)) == 2 for f in files)
    dead = max(ses, key=lambda se: len(by_se[se.id]))
    rest = [se for se in ses if se is not dead]
    dead.process.stop()  # for good
    wait_for("the admin sees it offline", lambda: offline(system, dead.id))

    worker = start_worker(system)
    summary = scan_without(system, dead.id)
    assert summary["under_replicated"] == len(by_se[dead.id]) > 0
    assert summary["deferred"] + summary["already_queued"] == len(by_se[dead.id])
    assert summary["unrecoverable"] == 0
    assert summary["wanted_permanent"] == 2

    want = {se.id for se in rest}
    wait_for("every file on both live SEs", lambda: all(live(system, f) >= want for f in files))
    for file_id, data in files.items():
        for se in rest:
            assert verified(se, file_id, data)
    repairs = [r for r in runs(system, "repair.file") if r["state"] == "succeeded"]
    assert sorted(r["summary"]["file_id"] for r in repairs) == sorted(by_se[dead.id])
    assert all(r["summary"]["result"] == "repaired" for r in repairs)
    moved = sum(len(files[f]) for f in by_se[dead.id])
    assert metric(worker, "artstore_worker_repair_bytes_total") == moved
    # Nothing is owed any more: the gauge says so after the next scan.
    again = ended(system, defer(system, "repair.scan"))["summary"]
    assert again["under_replicated"] == 0 and again["short_of_policy"] == 0
    assert metric(worker, "artstore_worker_under_replicated_files") == 0
    worker.stop()


def test_a_quarantined_copy_is_restored_from_the_healthy_one(system: System) -> None:
    token = system.user_token()
    a, b = system.add_se("rw"), system.add_se("rw")
    ig = system.start_ingester()
    data = os.urandom(300_000)
    r = upload(ig, token, data)
    assert r.status_code == 201, r.text
    file_id = r.json()["file_id"]
    assert live(system, file_id) == {a.id, b.id}
    # Flip bytes in b's blob; a deep reconcile quarantines it.
    with psycopg.connect(libpq_url(system.db.url)) as conn:
        (path,) = conn.execute(
            "SELECT storage_path FROM catalog.files WHERE file_id = %s AND storage_element_id = %s",
            (file_id, b.id),
        ).fetchone() or ("",)
    blob = b.data_dir / "files" / path
    spoiled = bytearray(blob.read_bytes())
    spoiled[1000] ^= 0xFF
    blob.write_bytes(bytes(spoiled))
    with b.client() as c:
        deep = c.post("/api/v1/maintenance/reconcile", params={"deep": "true"})
    assert deep.status_code == 200, deep.text
    assert copies(system, file_id) == {a.id: False, b.id: True}

    worker = start_worker(system)
    run = ended(
        system, defer(system, "repair.file", file_id=file_id, prefer_storage_element_id=b.id)
    )
    assert run["state"] == "succeeded", run
    assert run["summary"]["result"] == "repaired"
    assert run["summary"]["copied_to"] == [b.id] and run["summary"]["copied_from"] == [a.id]
    assert copies(system, file_id) == {a.id: False, b.id: False}
    assert verified(b, file_id, data) and verified(a, file_id, data)
    # Done is done: the same job again finds nothing to do.
    again = ended(system, defer(system, "repair.file", file_id=file_id))
    assert again["summary"]["result"] == "nothing to do" and again["summary"]["copied_to"] == []
    worker.stop()


def test_a_stranded_copy_becomes_a_counted_replica(system: System) -> None:
    token = system.user_token()
    a, b = system.add_se("rw"), system.add_se("rw")
    # An rw SE that reads every upload, then fails it once the other copy is stored; it
    # reports the most room, so placement puts one copy of every file on it.
    fake = FakeSE(info_for("fake", "rw"), answer_after=4.0)
    try:
        with system.admin.client(system.admin_token()) as c:
            assert c.post("/api/v1/storage-elements", json={"url": fake.url}).status_code == 201
        ig = system.start_ingester()
        tag = f"stranded{uuid.uuid4().hex[:8]}"
        data = os.urandom(50_000)
        r = upload(ig, token, data, tags=tag)
        assert r.status_code == 502, r.text
        stranded = r.json()["error"]["details"]["stranded_copies"]
        assert len(stranded) == 1
        file_id, holder = stranded[0]["file_id"], stranded[0]["storage_element_id"]
        assert live(system, file_id) == {holder}
        query = system.start_query()
        found = search(query, token, tag)
        assert [f["file_id"] for f in found] == [file_id]  # an ordinary file
        assert [cp["storage_element_id"] for cp in found[0]["copies"]] == [holder]

        worker = start_worker(system)
        scan = ended(system, defer(system, "repair.scan"))
        assert scan["summary"]["under_replicated"] == 1 and scan["summary"]["deferred"] == 1
        other = b if holder == a.id else a
        wait_for("the second copy", lambda: live(system, file_id) == {a.id, b.id})
        (repair,) = [r for r in runs(system, "repair.file") if r["state"] == "succeeded"]
        summary = repair["summary"]
        assert summary["copied_to"] == [other.id] and summary["result"] == "repaired"
        # The fake SE was tried first (most room) and refused: it is in the summary.
        assert [f["storage_element_id"] for f in summary["failures"]] == [fake.id]
        assert verified(a, file_id, data) and verified(b, file_id, data)
        found = search(query, token, tag)
        assert {cp["storage_element_id"] for cp in found[0]["copies"]} == {a.id, b.id}
        worker.stop()
    finally:
        fake.close()


def test_two_workers_copy_each_file_exactly_once(system: System) -> None:
    token = system.user_token()
    ses = [system.add_se("rw") for _ in range(3)]
    ig = system.start_ingester()
    files: dict[str, bytes] = {}
    for i in range(20):
        data = os.urandom(20_000 + i)
        r = upload(ig, token, data)
        assert r.status_code == 201, r.text
        files[r.json()["file_id"]] = data
    # Three copies wanted now: each file lacks exactly one SE. Every file is queued twice,
    # so both workers may take the same file at once.
    workers = [start_worker(system, WK_PERMANENT_COPIES="3") for _ in range(2)]
    queued = [defer(system, "repair.file", file_id=f) for f in files for _ in range(2)]
    done = [ended(system, run_id) for run_id in queued]
    assert all(run["state"] == "succeeded" for run in done), done
    copied: dict[str, list[str]] = {f: [] for f in files}
    for run in done:
        assert run["summary"]["failures"] == [], run  # no 409 from a copy already there
        copied[run["summary"]["file_id"]] += run["summary"]["copied_to"]
    all_ses = {se.id for se in ses}
    for file_id, data in files.items():
        assert len(copied[file_id]) == 1, copied[file_id]
        assert copies(system, file_id) == dict.fromkeys(all_ses, False)
        (se,) = [se for se in ses if se.id == copied[file_id][0]]
        assert verified(se, file_id, data)
    for w in workers:
        w.stop()


def test_a_worker_killed_mid_copy_leaves_nothing_half_visible(system: System) -> None:
    token = system.user_token()
    a, b = system.add_se("rw"), system.add_se("rw")
    ig = system.start_ingester()
    data = os.urandom(6 * 1024 * 1024)
    r = upload(ig, token, data)
    assert r.status_code == 201, r.text
    file_id = r.json()["file_id"]
    c = system.add_se("rw")  # a third rw SE: the file is owed a third copy there
    slow = start_worker(system, WK_PERMANENT_COPIES="3", WK_REPAIR_BYTES_PER_SECOND=str(512 * 1024))
    first = defer(system, "repair.file", file_id=file_id)
    wait_for("bytes on their way", lambda: metric(slow, "artstore_worker_repair_bytes_total") > 0)
    slow.kill()
    # Half a copy was on its way to c: none of it is visible there.
    assert live(system, file_id) == {a.id, b.id}
    with c.client() as cc:
        assert cc.get(f"/api/v1/files/{file_id}").status_code == 404
    assert c.attrs() == []
    wait_for("c rolled the upload back", lambda: c.tmp_entries() == [])

    fast = start_worker(system, WK_PERMANENT_COPIES="3")
    # The killed run is found lost and queued again once (tasks/lost.py): it finishes.
    lost = ended(system, first)
    assert lost["state"] == "failed" and lost["error"] == "worker lost"
    wait_for("the third copy", lambda: live(system, file_id) == {a.id, b.id, c.id})
    assert verified(c, file_id, data)
    retried = [r for r in runs(system, "repair.file") if r.get("retry_of") == first]
    assert len(retried) == 1 and ended(system, retried[0]["id"])["state"] == "succeeded"
    fast.stop()
