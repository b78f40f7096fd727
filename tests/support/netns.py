"""Hosts of their own for process tests: a storage element in a network namespace that a
test can cut off from the network while the SE keeps running (issue 15).

A stopped process refuses connections at once; a lost host is silent. Each
:class:`Namespace` is an ``ip netns`` joined to this host by a veth pair on a private /30
out of 10.213.0.0/16 (one not in use here): the host's end is ``host_ip``, the
namespace's ``ns_ip``. Services on the host listen on 127.0.0.1, which a namespace does not
share, so :meth:`Namespace.forward` puts a TCP forwarder (:class:`CuttableProxy`) on
``host_ip`` in front of each loopback URL the SE needs (PostgreSQL, the admin's JWKS and
revocations, Redis, S3); a Unix-socket database URL works as it is (the filesystem is
shared). The host reaches the SE at ``ns_ip`` directly.

:meth:`Namespace.cut` takes the namespace's end of the link down: the host keeps its route
to the /30, so what it sends the SE goes unanswered, as to a dead host on the same segment
(a connect times out, or fails with "no route to host" once ARP gave up on the address;
never "connection refused", as from a stopped process), and the SE's own connections fail
inside the namespace. Taking the host's end down instead would
remove that route and send the SE's traffic to this host's default gateway (on these
machines something there answers), so it is never done; a ``blackhole`` route for the /30
at a high metric is kept while the namespace exists, in case the host's route is ignored
(``ignore_routes_with_linkdown``) or goes first at teardown. Nothing else on the host is
touched: no other interface, route or sysctl.

Teardown (:meth:`Namespace.close`, a fixture finalizer) stops the services, kills whatever
still runs inside, deletes the namespace, the veth and the guard route. A marker in
``/run/artstore-netns`` names the test process that made each namespace, so one left by a
test process that was killed is swept by the next :meth:`Namespace.create`.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit, urlunsplit

from tests.support.admin import ISSUER
from tests.support.issuer import TestIssuer
from tests.support.proxy import CuttableProxy
from tests.support.se import StorageElementUnderTest
from tests.support.system import System

NAME_PREFIX = "artstore-"
POOL = ipaddress.IPv4Network("10.213.0.0/16")
STATE_DIR = Path("/run/artstore-netns")
GUARD_METRIC = 4242
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "redis": 6379}
# Settings of an SE that name another service; a loopback one is forwarded into the namespace.
FORWARDED = (
    "DATABASE_URL",
    "JWKS_URL",
    "ADMIN_URL",
    "REVOCATIONS_URL",
    "REDIS_URL",
    "SE_S3_ENDPOINT_URL",
)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def ensure_ip() -> None:
    """``ip`` (Debian's iproute2), installed with apt-get when missing (as root)."""
    if shutil.which("ip"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("network namespace tests need iproute2 (`ip`) and root")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "iproute2"]
    if subprocess.run(install, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, check=True)
        subprocess.run(install, capture_output=True, check=True)


def ip(*args: str, check: bool = True) -> str:
    """``ip ARGS``'s output; a failure carries its stderr when ``check``."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def networks_in_use() -> list[IPNetwork]:
    """Every network an address or route of this host's namespace lies in."""
    found: list[IPNetwork] = []
    for link in json.loads(ip("-j", "addr", "show") or "[]"):
        for a in link.get("addr_info", []):
            found.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for route in json.loads(ip("-j", "route", "show", "table", "all") or "[]"):
        dst = route.get("dst", "default")
        with contextlib.suppress(ValueError):
            found.append(ipaddress.ip_network(dst, strict=False))
    return found


def _pick_subnet() -> ipaddress.IPv4Network:
    """A /30 of the pool that overlaps nothing in use (call under the lock)."""
    used = [n for n in networks_in_use() if n.version == 4 and n.prefixlen > 0]
    for _ in range(2000):
        candidate = ipaddress.IPv4Network(
            (int(POOL.network_address) + 4 * random.randrange(POOL.num_addresses // 4), 30)
        )
        if not any(candidate.overlaps(n) for n in used):
            return candidate
    raise RuntimeError(f"no free /30 left in {POOL}")


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One test process at a time picks a subnet and makes or sweeps namespaces."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def sweep_stale() -> list[str]:
    """Remove the namespaces whose maker is gone (a test process killed); their names."""
    swept = []
    with _locked():
        for marker in sorted(STATE_DIR.glob(f"{NAME_PREFIX}*")):
            record = json.loads(marker.read_text())
            if not _alive(int(record["owner"])):
                _destroy(record["name"], record["host_if"], record["subnet"])
                swept.append(str(record["name"]))
    return swept


def namespace_pids(name: str) -> list[int]:
    return [int(p) for p in ip("netns", "pids", name, check=False).split()]


def _destroy(name: str, host_if: str, subnet: str) -> None:
    """Everything a namespace made, gone: its processes, itself, the veth, the guard route."""
    deadline = time.monotonic() + 10
    while (pids := namespace_pids(name)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    ip("netns", "del", name, check=False)
    ip("link", "del", host_if, check=False)  # gone with the namespace's end, unless held
    ip("route", "del", "blackhole", subnet, "metric", str(GUARD_METRIC), check=False)
    (STATE_DIR / name).unlink(missing_ok=True)


@dataclass
class Namespace:
    """One network namespace with a veth pair to this host; see the module docstring."""

    __test__ = False

    name: str
    host_if: str
    ns_if: str
    subnet: ipaddress.IPv4Network
    connected: bool = True
    ses: list[StorageElementUnderTest] = field(default_factory=list)
    _proxies: dict[tuple[str, int], CuttableProxy] = field(default_factory=dict)
    _closed: bool = False

    @classmethod
    def create(cls) -> Namespace:
        ensure_ip()
        sweep_stale()
        token = secrets.token_hex(4)
        name = f"{NAME_PREFIX}{token}"
        with _locked():
            ns = cls(name, f"as{token}h", f"as{token}n", _pick_subnet())
            record = {
                "name": name,
                "host_if": ns.host_if,
                "subnet": str(ns.subnet),
                "owner": os.getpid(),
            }
            (STATE_DIR / name).write_text(json.dumps(record))
            try:
                ns._build()
            except BaseException:
                _destroy(name, ns.host_if, str(ns.subnet))
                raise
        return ns

    def _build(self) -> None:
        host_cidr = f"{self.host_ip}/{self.subnet.prefixlen}"
        ns_cidr = f"{self.ns_ip}/{self.subnet.prefixlen}"
        # The guard first: from here on, nothing for the /30 can leave by the default route.
        ip("route", "add", "blackhole", str(self.subnet), "metric", str(GUARD_METRIC))
        ip("netns", "add", self.name)
        ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if,
           "netns", self.name)  # fmt: skip
        ip("addr", "add", host_cidr, "dev", self.host_if)
        ip("link", "set", self.host_if, "up")
        ip("-n", self.name, "link", "set", "lo", "up")
        ip("-n", self.name, "addr", "add", ns_cidr, "dev", self.ns_if)
        ip("-n", self.name, "link", "set", self.ns_if, "up")

    @property
    def host_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def ns_ip(self) -> str:
        return str(self.subnet.network_address + 2)

    @property
    def wrap(self) -> list[str]:
        """The command that runs a program inside (it execs: the pid stays the program's)."""
        return ["ip", "netns", "exec", self.name]

    def pids(self) -> list[int]:
        return namespace_pids(self.name)

    # -- what the inside reaches ------------------------------------------------------
    def forward(self, url: str) -> str:
        """``url`` as the namespace reaches it: a loopback host:port becomes a forwarder
        on ``host_ip`` (one per upstream); any other URL is returned as it is."""
        parts = urlsplit(url)
        if parts.hostname not in LOOPBACK:
            return url
        scheme = parts.scheme.split("+", 1)[0]
        port = parts.port or DEFAULT_PORTS[scheme]
        upstream = (parts.hostname or "127.0.0.1", port)
        if upstream not in self._proxies:
            self._proxies[upstream] = CuttableProxy(upstream, listen=self.host_ip)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user + '@' if user else ''}{self.host_ip}:{self._proxies[upstream].port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def forwarded_env(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` with every service URL an SE reads (its own or inherited from this
        process's environment) reachable from inside."""
        out = dict(env)
        for key in FORWARDED:
            value = env.get(key, os.environ.get(key, ""))
            if value:
                out[key] = self.forward(value)
        return out

    def add_se(
        self, system: System, mode: str, *, register: bool = True, **env: str
    ) -> StorageElementUnderTest:
        """As :meth:`System.add_se`, but the SE runs in here, listens on ``ns_ip`` and is
        registered with the admin at that address. ``System.stop`` stops it too."""
        se = StorageElementUnderTest(
            system.root / "ses",
            cast(TestIssuer, system.issuer),
            self.forward(system.db.url),
            mode,
            self.forwarded_env(
                {
                    "JWKS_URL": system.admin.jwks_url,
                    "ADMIN_URL": system.admin.url,
                    "JWT_ISSUER": ISSUER,
                    **env,
                }
            ),
            host=self.ns_ip,
            wrap=self.wrap,
        )
        system.ses.append(se)
        self.ses.append(se)
        se.start()
        if register:
            system.register(se)
        return se

    # -- the partition ----------------------------------------------------------------
    def cut(self) -> None:
        """Off the network: the inside's end of the link goes down (see the module
        docstring for why not the host's); the processes inside keep running."""
        ip("-n", self.name, "link", "set", self.ns_if, "down")
        self.connected = False

    def heal(self) -> None:
        ip("-n", self.name, "link", "set", self.ns_if, "up")
        self.connected = True

    def close(self) -> None:
        """Stop the services inside, then remove everything (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            for se in self.ses:
                se.process.stop(timeout=10)
        finally:
            for proxy in self._proxies.values():
                proxy.close()
            with _locked():
                _destroy(self.name, self.host_if, str(self.subnet))


@contextlib.contextmanager
def namespaces() -> Iterator[Callable[[], Namespace]]:
    """A maker of namespaces that removes every one it made on the way out, whatever the
    test did (the body of a fixture)."""
    made: list[Namespace] = []

    def make() -> Namespace:
        made.append(Namespace.create())
        return made[-1]

    try:
        yield make
    finally:
        errors = []
        for ns in reversed(made):
            try:
                ns.close()
            except Exception as exc:  # close the others, then report
                errors.append(exc)
        if errors:
            raise errors[0]
