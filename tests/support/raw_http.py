"""Requests no well-behaved client sends (a head of a megabyte, a body announced far
larger than what follows), written on a plain socket so the answer can be read while
the rest is never sent."""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any
from urllib.parse import urlsplit


class RawAnswer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def send_raw(url: str, head: bytes, body: bytes = b"", timeout: float = 30.0) -> RawAnswer:
    """Send ``head`` (request line and headers, ending in a blank line) and ``body`` to
    the server of ``url``, then read the answer until the server closes or the
    announced length has arrived."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
        # The server may answer and close before taking it all: then read the answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        raw_head, _, rest = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return RawAnswer(status, headers, rest[:length])
