"""Which URLs a storage element may be registered at (issue 13).

Every SE receives tokens (bound to it alone) and the admin calls it, so its URL is
checked before anything is fetched from it: ``http``/``https`` with a host, no user info,
query or fragment, a valid port; and when ``AM_SE_URL_ALLOW`` is set, a host named there
or one whose every address lies in a CIDR named there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from artstore.common.errors import Forbidden, ValidationFailed

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _bad(reason: str) -> ValidationFailed:
    return ValidationFailed(f"invalid storage element url: {reason}", details={"field": "url"})


def check_form(url: str) -> tuple[str, str]:
    """(normalized url, host) of a well-formed SE url, else 400."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of range or not a number
    except ValueError:
        raise _bad("not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise _bad("the scheme must be http or https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _bad("user info is not allowed")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise _bad("a query or fragment is not allowed")
    host = (parts.hostname or "").lower()
    if not host or port == 0:
        raise _bad("a host (and a valid port) is required")
    return url.rstrip("/"), host


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, setting: str) -> Allowlist | None:
        """None: anywhere. Entries that parse as a network are CIDRs, the rest hosts."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in setting.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        if not hosts and not networks:
            return None
        return cls(frozenset(hosts), tuple(networks))

    def _covers(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    async def check(self, host: str) -> None:
        if host in self.hosts:
            return
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            addresses = await _resolve(host) if self.networks else []
        if not addresses or not all(self._covers(a) for a in addresses):
            raise Forbidden(
                "that host is not allowed for storage elements (AM_SE_URL_ALLOW)",
                details={"field": "url", "host": host, "reason": "url_not_allowed"},
            )


async def _resolve(host: str) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


async def check(url: str, allow: str) -> str:
    """The normalized url when an SE may be registered there; 400 or 403 otherwise."""
    normalized, host = check_form(url)
    allowlist = Allowlist.parse(allow)
    if allowlist is not None:
        await allowlist.check(host.strip("[]"))
    return normalized
