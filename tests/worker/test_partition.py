"""A storage element on a host of its own (a network namespace, tests/support/netns.py)
cut off from the network while it keeps running: the partition a stopped process never
shows (issue 15)."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.jobs import wait_for as support_wait_for
from tests.support.netns import (
    POOL,
    STATE_DIR,
    Namespace,
    ip,
    namespace_pids,
    namespaces,
    sweep_stale,
)
from tests.support.process import ServiceProcess
from tests.support.system import System, system_of_its_own

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
    with system_of_its_own(request, tmp_path_factory, "netns") as sys_:
        yield sys_


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


INSIDE_PING = """
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
except OSError as exc:
    print(type(exc).__name__)
else:
    s.sendall(b"PING\\r\\n")
    print(s.recv(64).decode().strip())
"""


def test_a_namespace_reaches_loopback_services_only_through_its_forwarders(
    netns: MakeNamespace,
) -> None:
    ns = netns()
    redis_url = ns.forward("redis://127.0.0.1:6379/0")
    forwarded = urlsplit(redis_url)
    assert forwarded.hostname == ns.host_ip and forwarded.path == "/0"
    db = urlsplit(ns.forward("postgresql+asyncpg://postgres@127.0.0.1:5432/x?ssl=disable"))
    assert (db.username, db.hostname, db.path) == ("postgres", ns.host_ip, "/x")
    assert db.query == "ssl=disable"
    assert ns.forward("http://example.org:8000/x") == "http://example.org:8000/x"

    def ping(host: str, port: int) -> str:
        done = subprocess.run(
            [*ns.wrap, sys.executable, "-c", INSIDE_PING, host, str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.strip()

    # Redis answers through the forwarder; the host's loopback is not the namespace's.
    assert ping(ns.host_ip, forwarded.port or 0) == "+PONG"
    assert ping("127.0.0.1", 6379) == "ConnectionRefusedError"
    ns.cut()  # and off the network, nothing is reached
    assert ping(ns.host_ip, forwarded.port or 0) != "+PONG"


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
        assert str(ns.subnet) not in routes  # nor the guard route


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


# -- (b) the files of a host that is gone get their copies back ---------------------------
FILES = 30


@pytest.fixture
def own_system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """A system of this test alone: the repair worker sees no other test's SEs or files."""
    with system_of_its_own(request, tmp_path_factory, "host_loss") as sys_:
        yield sys_


def upload_permanent(ingester: ServiceProcess, token: str, data: bytes, name: str) -> str:
    r = httpx.put(
        f"{ingester.url}/api/v1/files/upload",
        params={"filename": name, "retention_policy": "permanent"},
        content=data,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["file_id"])


def verified_copy(se: httpx.Client, file_id: str, digest: str) -> bool:
    """The SE behind ``se`` serves the whole file (its own check of the stored SHA-256)
    and the bytes that arrive hash to ``digest``."""
    r = se.get(f"/api/v1/files/{file_id}/download")
    if r.status_code == 404:
        return False
    assert r.status_code == 200, (str(se.base_url), file_id, r.text)
    return hashlib.sha256(r.content).hexdigest() == digest


def holders(readers: dict[str, httpx.Client], file_id: str, digest: str) -> set[str]:
    """The SEs (by id, among ``readers``) that serve ``file_id`` verified."""
    return {sid for sid, c in readers.items() if verified_copy(c, file_id, digest)}


def live_copies(system: System, file_id: str) -> set[str]:
    """SEs with a catalog row of ``file_id`` that is not quarantined."""
    rows = system.admin.sql(
        "SELECT storage_element_id FROM catalog.files"
        " WHERE file_id = $1::uuid AND quarantined_at IS NULL",
        file_id,
    )
    return {str(r["storage_element_id"]) for r in rows}


def runs(system: System, kind: str) -> list[dict[str, Any]]:
    with system.admin.client(system.admin_token()) as c:
        r = c.get("/api/v1/jobs", params={"kind": kind, "limit": 1000})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def wait_for(what: str, found: Callable[[], Any], limit: float = 180.0) -> Any:
    return support_wait_for(what, found, limit)


def scan_after(system: System, since: datetime, counts: Callable[[list[str]], bool]) -> Any:
    """The summary of a repair.scan that started after ``since`` and whose counted SEs
    satisfy ``counts``."""

    def found() -> Any:
        for run in runs(system, "repair.scan"):
            started = run["started_at"]
            if (
                run["state"] == "succeeded"
                and started is not None
                and datetime.fromisoformat(started) > since
                and counts(run["summary"]["counted_storage_elements"])
            ):
                return run["summary"]
        return None

    return wait_for("a repair scan", found)


def test_b_a_cut_off_se_s_files_get_two_copies_back_and_keep_a_third_when_it_returns(
    own_system: System, netns: MakeNamespace
) -> None:
    with contextlib.ExitStack() as stack:
        _host_loss(own_system, netns, stack)


def _host_loss(system: System, netns: MakeNamespace, stack: contextlib.ExitStack) -> None:
    a, b = system.add_se("rw"), system.add_se("rw")
    ns = netns()
    lost = ns.add_se(system, "rw")
    for se in (a, b, lost):
        wait_status(system, se.id, "online")
    ingester = system.start_ingester()  # IG_REPLICAS defaults to 2
    token = system.user_token(["user"])
    files: dict[str, str] = {}  # file_id -> SHA-256
    for i in range(FILES):
        data = os.urandom(1_000 + 7_919 * i)
        files[upload_permanent(ingester, token, data, f"f{i}.bin")] = hashlib.sha256(
            data
        ).hexdigest()
    assert all(len(live_copies(system, f)) == 2 for f in files)
    on_lost = {f for f in files if lost.id in live_copies(system, f)}
    assert on_lost  # placement spread the copies: the SE about to be lost holds some

    # Repair scans every 5 s (a lost copy counts until the 2 s grace is over).
    system.start_worker(
        WK_REPAIR_SCAN_CRON="* * * * * */5",
        WK_OFFLINE_GRACE_SECONDS="2",
        WK_GC_CRON="",
        WK_RECONCILE_CRON="",
        WK_SCRUB_CRON="",
        WK_PRUNE_CRON="",
    )
    cut_at = datetime.now(UTC)
    ns.cut()
    wait_status(system, lost.id, "offline")
    summary = scan_after(system, cut_at, lambda counted: lost.id not in counted)
    assert summary["unrecoverable"] == 0 and summary["wanted_permanent"] == 2

    # Every file again has two copies on the SEs still reachable, each downloaded there
    # and verified.
    both = {a.id, b.id}
    wait_for(
        "every file on both reachable SEs",
        lambda: all(live_copies(system, f) >= both for f in files),
    )
    readers = {se.id: stack.enter_context(se.client("files:read")) for se in (a, b, lost)}
    reachable = {sid: readers[sid] for sid in both}
    for file_id, digest in files.items():
        assert holders(reachable, file_id, digest) == both, file_id
    repairs = [r for r in runs(system, "repair.file") if r["state"] == "succeeded"]
    copied = [r["summary"] for r in repairs if r["summary"]["copied_to"]]
    assert sorted(s["file_id"] for s in copied) == sorted(on_lost)
    assert all(s["result"] == "repaired" and set(s["copied_from"]) <= both for s in copied)
    # Cut off, never stopped: the SE ran the whole time.
    assert lost.process.proc is not None and lost.process.proc.poll() is None

    # The host comes back with its copies. Repair only adds copies (the policy is a
    # minimum, docs/repair.md): they are kept, and those files have three.
    healed_at = datetime.now(UTC)
    ns.heal()
    wait_status(system, lost.id, "online")
    summary = scan_after(system, healed_at, lambda counted: lost.id in counted)
    assert summary["under_replicated"] == 0 and summary["deferred"] == 0
    for file_id, digest in files.items():
        want = both | {lost.id} if file_id in on_lost else both
        assert live_copies(system, file_id) == want, file_id
        assert holders(readers, file_id, digest) == want, file_id
    # ... and nothing was copied again.
    copies_made = [r for r in runs(system, "repair.file") if (r["summary"] or {}).get("copied_to")]
    assert len(copies_made) == len(on_lost)
