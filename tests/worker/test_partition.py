"""A storage element on a host of its own (a network namespace, tests/support/netns.py)
cut off from the network while it keeps running: the partition a stopped process never
shows (issue 15)."""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.netns import (
    GUARD_METRIC,
    POOL,
    STATE_DIR,
    Namespace,
    ip,
    namespace_pids,
    namespaces,
    sweep_stale,
)
from tests.support.system import System

pytestmark = pytest.mark.process

MakeNamespace = Callable[[], Namespace]


@pytest.fixture
def netns() -> Iterator[MakeNamespace]:
    with namespaces() as make:
        yield make


@pytest.fixture(scope="module")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_netns")
    sys_ = System(tmp_path_factory.mktemp("partition"), db)
    yield sys_
    sys_.stop()
    db.drop()


def registry_item(system: System, storage_id: str) -> dict[str, Any]:
    with system.admin.client(system.admin_token()) as c:
        r = c.get(f"/api/v1/storage-elements/{storage_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_status(system: System, storage_id: str, want: str, limit: float = 60.0) -> None:
    """Until the admin's poller reports ``want`` for the SE (a bound, not a timing)."""
    deadline = time.monotonic() + limit
    while (seen := registry_item(system, storage_id)["status"]) != want:
        assert time.monotonic() < deadline, f"{storage_id} is {seen}, not {want}"
        time.sleep(0.2)


def host_state() -> dict[str, Any]:
    """This host's interfaces, addresses and routes as ``ip`` shows them, but for the
    namespaces' veths and routes (another test process may be making its own)."""
    links = [
        link
        for link in json.loads(ip("-j", "addr", "show"))
        if not re.fullmatch(r"as[0-9a-f]{8}h", link["ifname"])
    ]
    for link in links:
        for volatile in ("stats64", "stats", "operstate_changes"):
            link.pop(volatile, None)
        for addr in link.get("addr_info", []):
            addr.pop("valid_life_time", None)
            addr.pop("preferred_life_time", None)
    routes = [
        r
        for r in json.loads(ip("-j", "route", "show", "table", "all"))
        if not _in_pool(r.get("dst", "default"))
    ]
    return {"links": links, "routes": routes}


def _in_pool(dst: str) -> bool:
    try:
        net = ipaddress.ip_network(dst, strict=False)
    except ValueError:  # "default"
        return False
    return isinstance(net, ipaddress.IPv4Network) and net.subnet_of(POOL)


def test_a_namespaced_se_is_offline_while_cut_and_alive_and_online_when_healed(
    system: System, netns: MakeNamespace
) -> None:
    ns = netns()
    se = ns.add_se(system, "rw")
    assert se.url == f"http://{ns.ns_ip}:{se.process.port}"
    assert se.process.proc is not None and se.process.proc.pid in ns.pids()
    assert registry_item(system, se.id)["url"] == se.url
    wait_status(system, se.id, "online")
    # It answers from the host at its own address, and reaches PostgreSQL from inside.
    with se.client("storage:read") as c:
        info = c.get("/api/v1/info")
        ready = c.get("/health/ready")
    assert info.status_code == 200 and info.json()["storage_id"] == se.id
    assert ready.json()["checks"]["catalog"]["status"] == "ok", ready.text

    ns.cut()
    wait_status(system, se.id, "offline")
    # Cut off, not stopped: the process runs, and the host's calls go unanswered.
    assert se.process.proc.poll() is None
    assert se.process.proc.pid in ns.pids()
    # A dead host's silence: a timeout, or "no route to host" once ARP gave up on it;
    # never the "connection refused" of a stopped process.
    with pytest.raises((httpx.TimeoutException, httpx.ConnectError)) as failed:
        httpx.get(f"{se.url}/health/live", timeout=1.0)
    assert "refused" not in str(failed.value).lower()

    ns.heal()
    wait_status(system, se.id, "online")
    with se.client("storage:read") as c:
        assert c.get("/health/ready").json()["checks"]["catalog"]["status"] == "ok"


def test_a_cut_se_keeps_its_uploads_and_serves_them_again_when_healed(
    system: System, netns: MakeNamespace
) -> None:
    ns = netns()
    se = ns.add_se(system, "rw")
    body = b"written before the partition\n" * 100
    with se.client() as c:
        r = c.post(
            "/api/v1/files",
            content=body,
            params={"filename": "a.txt"},
            headers={"Content-Type": "text/plain"},
        )
    assert r.status_code == 201, r.text
    file_id = r.json()["file_id"]
    ns.cut()
    wait_status(system, se.id, "offline")
    ns.heal()
    wait_status(system, se.id, "online")
    with se.client() as c:
        got = c.get(f"/api/v1/files/{file_id}/download")
    assert got.status_code == 200 and got.content == body


def test_a_namespace_leaves_nothing_behind_on_the_host(system: System) -> None:
    """Made, used, cut and closed: the host's interfaces and routes are as they were, and
    the SE inside is gone with its namespace."""
    before = host_state()
    with namespaces() as make:
        ns = make()
        se = ns.add_se(system, "rw", register=False)
        assert ns.host_if in ip("-br", "link")
        ns.cut()
        proc = se.process.proc
        assert proc is not None and proc.poll() is None
    assert proc.poll() is not None
    assert ns.name not in ip("netns", "list")
    assert host_state() == before
    assert ns.host_if not in ip("-br", "link")
    assert str(ns.subnet) not in ip("route", "show", "table", "all")
    assert not (STATE_DIR / ns.name).exists()


def test_a_namespace_whose_maker_died_is_swept(system: System) -> None:
    with namespaces() as make:
        ns = make()
        se = ns.add_se(system, "rw", register=False)
        assert se.process.proc is not None
        pid = se.process.proc.pid
        # As if the test process that made it had been killed: its marker names a dead pid.
        marker = STATE_DIR / ns.name
        record = json.loads(marker.read_text())
        marker.write_text(json.dumps({**record, "owner": _dead_pid()}))
        assert ns.name in sweep_stale()
        assert ns.name not in ip("netns", "list")
        assert pid not in namespace_pids(ns.name)
        se.process.proc.wait(10)
        routes = ip("route", "show", "table", "all")
        assert str(ns.subnet) not in routes and f"metric {GUARD_METRIC}" not in routes


def _dead_pid() -> int:
    import subprocess

    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid
