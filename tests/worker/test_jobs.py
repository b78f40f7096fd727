"""Background jobs against real processes (issue 15): scheduled SE jobs in the history
with the SE's answer, the history across restarts, failures, retry and cancel, the
list's filters and the API's refusals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.database import ROOT
from tests.support.jobs import defer as defer_run
from tests.support.jobs import wait_for as support_wait_for
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, system_of_its_own, wait_ready

pytestmark = pytest.mark.process

# Every minute: procrastinate defers the latest tick at start, so a fresh worker runs it
# at once. Every other schedule off, so the history holds only what a test made.
SCHEDULES = {
    "WK_GC_CRON": "* * * * *",
    "WK_RECONCILE_CRON": "",
    "WK_SCRUB_CRON": "* * * * *",
    "WK_REPAIR_SCAN_CRON": "",
    "WK_PRUNE_CRON": "",
    "WK_STALLED_SECONDS": "3",
}


@pytest.fixture(scope="module")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    with system_of_its_own(request, tmp_path_factory, "jobs") as sys_:
        yield sys_


def jobs(system: System, token: str | None = None, **params: Any) -> httpx.Response:
    with system.admin.client(token or system.admin_token()) as c:
        return c.get("/api/v1/jobs", params=params)


def wait_for(what: str, found: Callable[[], Any], limit: float = 90.0) -> Any:
    return support_wait_for(what, found, limit)


def gc_runs(system: System, se: StorageElementUnderTest, state: str) -> list[dict[str, Any]]:
    r = jobs(system, kind="se.gc", storage_element_id=se.id, state=state)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_scheduled_gc_is_recorded_with_the_se_answer_and_survives_restarts(
    system: System,
) -> None:
    se = system.add_se("rw")
    worker = system.start_worker(**SCHEDULES)
    runs = wait_for("a succeeded se.gc run", lambda: gc_runs(system, se, "succeeded"))
    run = runs[0]
    assert run["requested_by"] == "schedule"
    assert run["attempts"] == 1
    assert run["started_at"] is not None and run["finished_at"] is not None
    assert run["summary"]["storage_element_id"] == se.id
    assert {"expired", "reclaimed", "bytes_freed"} <= set(run["summary"]["result"])

    # se.scrub asked the SE for a pass and waited for its end (the SE's own pass at
    # start was the first).
    scrub = wait_for(
        "a succeeded se.scrub run",
        lambda: jobs(system, kind="se.scrub", storage_element_id=se.id, state="succeeded").json()[
            "items"
        ],
    )[0]
    assert scrub["summary"]["result"]["passes"] >= 2
    assert scrub["summary"]["result"]["last_pass_at"] is not None

    metrics = httpx.get(f"{worker.url}/metrics", timeout=5).text
    assert 'artstore_worker_jobs_ended_total{kind="se.gc",state="succeeded"}' in metrics
    assert 'artstore_worker_jobs_run_total{kind="se.scrub"}' in metrics

    worker.stop()
    system.admin.process.stop()
    system.admin.process.start()
    with system.admin.client(system.admin_token()) as c:
        again = c.get(f"/api/v1/jobs/{run['id']}")
    assert again.status_code == 200, again.text
    assert again.json() == run
    worker.start()
    wait_ready(worker)
    assert any(r["id"] == run["id"] for r in gc_runs(system, se, "succeeded"))
    worker.stop()
    system.unregister(se)
    se.process.stop()


def defer(system: System, kind: str, **args: Any) -> int:
    return defer_run(system.db.url, kind, **args)


def run_of(system: System, run_id: int) -> dict[str, Any]:
    with system.admin.client(system.admin_token()) as c:
        r = c.get(f"/api/v1/jobs/{run_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def ended(system: System, run_id: int) -> dict[str, Any]:
    return dict(
        wait_for(
            f"run {run_id} ended",
            lambda: (
                (r := run_of(system, run_id))["state"] in ("succeeded", "failed", "cancelled") and r
            ),
        )
    )


def start_worker(system: System, **env: str) -> ServiceProcess:
    return system.start_worker(
        **{
            **SCHEDULES,
            "WK_GC_CRON": "",
            "WK_SCRUB_CRON": "",
            "WK_EXTRA_TASK_MODULES": "tests.worker.jobs_for_tests",
            "WK_LOST_CHECK_CRON": "* * * * * */2",
            "PYTHONPATH": str(ROOT),
            **env,
        }
    )


def test_a_job_that_raises_is_recorded_failed_and_the_worker_goes_on(
    system: System, tmp_path: Path
) -> None:
    worker = start_worker(system)
    try:
        failed = ended(system, defer(system, "test.fail", message="boom at step 3"))
        assert failed["state"] == "failed"
        assert failed["error"] == "RuntimeError: boom at step 3"
        assert failed["attempts"] == 1 and failed["summary"] is None
        (tmp_path / "go").touch()
        go = str(tmp_path / "go")
        after = defer(system, "test.wait", started=str(tmp_path / "s"), release=go)
        ok = ended(system, after)
        assert ok["state"] == "succeeded" and ok["summary"] == {"released": True, "run_id": after}

        with system.admin.client(system.admin_token()) as c:
            assert c.post(f"/api/v1/jobs/{failed['id']}/cancel").status_code == 409
            assert c.post(f"/api/v1/jobs/{after}/retry").status_code == 409  # succeeded
            retried = c.post(f"/api/v1/jobs/{failed['id']}/retry")
        assert retried.status_code == 201, retried.text
        new = retried.json()
        assert new["id"] != failed["id"] and new["retry_of"] == failed["id"]
        assert new["kind"] == "test.fail" and new["args"] == {"message": "boom at step 3"}
        assert ended(system, new["id"])["error"] == "RuntimeError: boom at step 3"
        metrics = httpx.get(f"{worker.url}/metrics", timeout=5).text
        assert 'artstore_worker_jobs_failed_total{kind="test.fail"} 2.0' in metrics
    finally:
        worker.stop()


def test_cancel_while_queued_and_while_running(system: System, tmp_path: Path) -> None:
    # No worker: the run waits in the queue and is cancelled there.
    queued = defer(system, "test.wait", started=str(tmp_path / "q"), release=str(tmp_path / "x"))
    assert run_of(system, queued)["state"] == "queued"
    with system.admin.client(system.admin_token()) as c:
        r = c.post(f"/api/v1/jobs/{queued}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "cancelled"
        assert c.post(f"/api/v1/jobs/{queued}/cancel").status_code == 409
        retried = c.post(f"/api/v1/jobs/{queued}/retry")  # a cancelled run may be retried
        assert retried.status_code == 201, retried.text
        again = retried.json()["id"]
        assert c.post(f"/api/v1/jobs/{again}/cancel").json()["state"] == "cancelled"
        audit = c.get("/api/v1/audit", params={"target_type": "job"})
    assert audit.status_code == 200, audit.text
    actions = {(e["action"], e["target_id"]) for e in audit.json()["items"]}
    assert {("job.cancel", str(queued)), ("job.retry", str(queued))} <= actions

    worker = start_worker(system)
    try:
        running = defer(
            system, "test.wait", started=str(tmp_path / "r"), release=str(tmp_path / "never")
        )
        wait_for("the job started", (tmp_path / "r").exists)
        with system.admin.client(system.admin_token()) as c:
            r = c.post(f"/api/v1/jobs/{running}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["abort_requested"] is not None
        assert ended(system, running)["state"] == "cancelled"
        # The cancelled queued runs never ran.
        assert not (tmp_path / "q").exists()
        assert run_of(system, queued)["state"] == "cancelled"
    finally:
        worker.stop()


def test_a_worker_killed_mid_job_leaves_the_run_failed_and_the_next_worker_retries_it(
    system: System, tmp_path: Path
) -> None:
    first = start_worker(system, WK_STALLED_SECONDS="2")
    release = tmp_path / "go"
    run_id = defer(system, "test.wait", started=str(tmp_path / "s"), release=str(release))
    wait_for("the job started", (tmp_path / "s").exists)
    first.kill()
    second = start_worker(system, WK_STALLED_SECONDS="2")
    try:
        lost = ended(system, run_id)
        assert lost["state"] == "failed" and lost["error"] == "worker lost"
        retry = wait_for(
            "the lost run queued again",
            lambda: [r for r in jobs(system, kind="test.wait").json()["items"]
                     if r["retry_of"] == run_id],
        )  # fmt: skip
        assert len(retry) == 1
        release.touch()
        done = ended(system, retry[0]["id"])
        assert done["state"] == "succeeded" and done["args"] == lost["args"]
        assert run_of(system, run_id)["state"] == "failed"  # the lost run stays failed
    finally:
        second.stop()


def test_filters_pagination_and_refusals(system: System) -> None:
    for i in range(2):  # queued; a worker started by a later test runs (and fails) them
        defer(system, "test.fail", message=f"filters {i}")
    everything = jobs(system, limit=1000)
    assert everything.status_code == 200
    total = everything.json()["total"]
    assert total >= 2
    first = jobs(system, limit=1, offset=0).json()
    assert len(first["items"]) == 1 and first["has_more"] is True and first["total"] == total
    second = jobs(system, limit=1, offset=1).json()
    assert second["items"][0]["id"] != first["items"][0]["id"]
    assert jobs(system, kind="no.such.kind").json()["total"] == 0
    assert jobs(system, until="2000-01-01T00:00:00Z").json()["total"] == 0
    assert jobs(system, since="2000-01-01T00:00:00Z").json()["total"] == total

    for bad in (
        {"state": "sleeping"},
        {"since": "2026-01-01T00:00:00"},  # no time zone
        {"since": "yesterday"},
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"limit": 0},
        {"offset": -1},
        {"kind": "k" * 65},
        {"kind": "se.gc\x00"},
        {"storage_element_id": "se\x07"},
        {"kind": "é" * 33},  # 66 bytes
    ):
        r = jobs(system, **bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["code"] == "VALIDATION_ERROR"

    with system.admin.client(system.admin_token()) as c:
        assert c.get("/api/v1/jobs/999999999").status_code == 404
        assert c.post("/api/v1/jobs/999999999/retry").status_code == 404
        assert c.post("/api/v1/jobs/999999999/cancel").status_code == 404
        assert c.get("/api/v1/jobs/0").status_code == 400
        assert c.get("/api/v1/jobs/not-a-number").status_code == 400
        assert c.get(f"/api/v1/jobs/{2**63}").status_code == 400

    assert httpx.get(f"{system.admin.url}/api/v1/jobs", timeout=5).status_code == 401
    bad_token = {"Authorization": "Bearer not-a-token"}
    assert httpx.get(f"{system.admin.url}/api/v1/jobs", headers=bad_token).status_code == 401
    reader = system.admin.sa_token(["admin:read"])
    assert jobs(system, token=reader).status_code == 200
    some_id = first["items"][0]["id"]
    with system.admin.client(reader) as c:
        assert c.post(f"/api/v1/jobs/{some_id}/retry").status_code == 403
        assert c.post(f"/api/v1/jobs/{some_id}/cancel").status_code == 403
    user = system.user_token(["user"])
    assert jobs(system, token=user).status_code == 403


def test_prune_deletes_ended_runs_older_than_the_history_days(
    system: System, tmp_path: Path
) -> None:
    old_ids = [defer(system, "test.fail", message=f"old {i}") for i in range(3)]
    kept = defer(system, "test.fail", message="recent")
    waiting = defer(system, "test.wait", started=str(tmp_path / "s"), release=str(tmp_path / "r"))
    # Ended long ago (and one still queued as long: never pruned while not ended).
    system.admin.sql(
        "UPDATE jobs.runs SET state = 'failed', finished_at = now() - interval '40 days',"
        " queued_at = now() - interval '41 days' WHERE id = ANY($1::bigint[])",
        old_ids,
    )
    system.admin.sql(
        "UPDATE jobs.runs SET state = 'failed', finished_at = now() WHERE id = $1", kept
    )
    system.admin.sql(
        "UPDATE jobs.runs SET queued_at = now() - interval '41 days' WHERE id = $1", waiting
    )
    worker = start_worker(system, WK_HISTORY_DAYS="30")
    try:
        with system.admin.client(system.admin_token()) as c:
            c.post(f"/api/v1/jobs/{waiting}/cancel")  # not run by this worker
        run = ended(system, defer(system, "jobs.prune"))
        assert run["state"] == "succeeded", run
        assert run["summary"]["runs_deleted"] >= 3 and run["summary"]["history_days"] == 30
        with system.admin.client(system.admin_token()) as c:
            for old in old_ids:
                assert c.get(f"/api/v1/jobs/{old}").status_code == 404
            assert c.get(f"/api/v1/jobs/{kept}").status_code == 200
            assert c.get(f"/api/v1/jobs/{waiting}").status_code == 200
    finally:
        worker.stop()


def test_a_run_left_running_without_a_live_job_is_lost_and_queued_again(
    system: System, tmp_path: Path
) -> None:
    (tmp_path / "go").touch()
    worker = start_worker(system)
    try:
        args = {"started": str(tmp_path / "s"), "release": str(tmp_path / "go")}
        run_id = defer(system, "test.wait", **args)
        assert ended(system, run_id)["state"] == "succeeded"
        # As if the worker died between its job's end in the queue and the run's.
        system.admin.sql(
            "UPDATE jobs.runs SET state = 'running', finished_at = NULL WHERE id = $1", run_id
        )
        lost = ended(system, run_id)
        assert lost["state"] == "failed" and lost["error"] == "worker lost"
        again = wait_for(
            "the lost run queued again",
            lambda: [r for r in jobs(system, kind="test.wait", limit=1000).json()["items"]
                     if r["retry_of"] == run_id],
        )  # fmt: skip
        assert ended(system, again[0]["id"])["state"] == "succeeded"
    finally:
        worker.stop()


def test_two_workers_run_each_job_once(system: System, tmp_path: Path) -> None:
    (tmp_path / "go").touch()
    first, second = start_worker(system), start_worker(system)
    try:
        ids = [
            defer(
                system, "test.wait", started=str(tmp_path / f"s{i}"), release=str(tmp_path / "go")
            )
            for i in range(8)
        ]
        runs = [ended(system, run_id) for run_id in ids]
        assert all(r["state"] == "succeeded" and r["attempts"] == 1 for r in runs), runs
        assert [r["summary"]["run_id"] for r in runs] == ids
    finally:
        first.stop()
        second.stop()
