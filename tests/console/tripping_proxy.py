"""A loopback TCP proxy in front of the ingester that cuts every connection once, as
soon as a given number of bytes went through it towards the ingester: the browser's
upload loses its connection midway, at a place the test chooses, not at a moment it
races for. It then refuses connections until the test calls :meth:`restore` (so the
browser cannot quietly resend the request on a new connection: the page must notice
and resume)."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.proxy import CuttableProxy


class TrippingProxy(CuttableProxy):
    __test__ = False

    def __init__(self, upstream: tuple[str, int], trip_after: int) -> None:
        self.trip_after = trip_after
        self.sent_up = 0  # bytes forwarded towards the upstream, every connection
        self.cuts = 0
        self._armed = False
        self._count = threading.Lock()
        super().__init__(upstream)

    def arm(self) -> None:
        with self._count:
            self.sent_up = 0
            self._armed = True

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:  # type: ignore[override]
        try:
            upward = dst.getpeername()[1] == self.upstream[1]
        except OSError:
            upward = False
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if not upward:
                    continue
                with self._count:
                    self.sent_up += len(data)
                    trip = self._armed and self.sent_up >= self.trip_after
                    if trip:
                        self._armed = False
                        self.cuts += 1
                if trip:
                    self.cut()
                    return
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
