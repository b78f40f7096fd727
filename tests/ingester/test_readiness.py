"""Readiness of the ingester: fail before it ever read the registry, degraded when the
admin is away (and it keeps placing with what it read) or a kind of SE is missing."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.ingester.conftest import client
from tests.support.process import ServiceProcess, free_port
from tests.support.system import System


def ready(proc: ServiceProcess) -> tuple[int, dict[str, Any]]:
    r = httpx.get(f"{proc.url}/health/ready", timeout=10)
    return r.status_code, dict(r.json())


def test_fail_until_the_registry_was_read(system: System) -> None:
    port = free_port()
    env = system.ingester_env(ADMIN_URL=f"http://127.0.0.1:{free_port()}")  # nobody there
    proc = ServiceProcess("ingester", env, port, system.root / f"ingester-{port}.log").start()
    try:
        status, body = ready(proc)
        assert status == 503 and body["status"] == "fail", body
        assert body["checks"]["registry"]["status"] == "fail"
    finally:
        proc.stop()


def test_degraded_without_a_kind_of_se_then_without_the_admin(
    system: System, user_token: str
) -> None:
    edit = system.add_se("edit")  # no rw SE at all
    ig = system.start_ingester()
    status, body = ready(ig)
    assert status == 200 and body["status"] == "degraded", body
    assert body["checks"]["registry"]["status"] == "ok"
    assert "rw" in body["checks"]["storage"]["message"]
    # One upload while the admin is up: the ingester and the SE now hold its JWKS
    # (kept JWKS_CACHE_SECONDS), as any service that has served a request does.
    with client(ig, user_token) as c:
        r = c.put("/api/v1/files/upload", params={"filename": "before.txt"}, content=b"up")
    assert r.status_code == 201, r.text
    system.admin.process.stop()
    deadline = time.monotonic() + 20  # the ingester re-reads every second
    while ready(ig)[1]["checks"]["registry"]["status"] != "degraded":
        assert time.monotonic() < deadline, ready(ig)
        time.sleep(0.2)
    status, body = ready(ig)
    assert status == 200 and body["status"] == "degraded"
    assert "admin unreachable" in body["checks"]["registry"]["message"]
    # It keeps placing with the registry it read last.
    with client(ig, user_token) as c:
        r = c.put("/api/v1/files/upload", params={"filename": "during.txt"}, content=b"still")
    assert r.status_code == 201, r.text
    assert r.json()["storage_element_id"] == edit.id
