"""A TCP proxy a test can cut: the way to take PostgreSQL away from a service under test."""

from __future__ import annotations

import contextlib
import socket
import threading

from sqlalchemy.engine import make_url


class CuttableProxy:
    __test__ = False

    def __init__(self, upstream: tuple[str, int] | str, listen: str = "127.0.0.1") -> None:
        self.upstream = upstream  # (host, port) or a Unix socket path
        # ``listen``: another address than loopback, e.g. the host's end of a network
        # namespace's veth (tests/support/netns.py), where the namespace reaches it.
        self._listener = socket.create_server((listen, 0))
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.open = True
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> str:
        return str(self._listener.getsockname()[0])

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, str):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.upstream)
            return s
        return socket.create_connection(self.upstream)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                server = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        self.open = False
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()


def proxied(url: str) -> tuple[CuttableProxy, str]:
    """A proxy in front of the database of ``url`` and the URL that goes through it."""
    u = make_url(url)
    host = u.query.get("host")
    if isinstance(host, str) and host.startswith("/"):
        proxy = CuttableProxy(f"{host}/.s.PGSQL.{u.port or 5432}")
        u = u.difference_update_query(["host"])
    else:
        proxy = CuttableProxy((u.host or "127.0.0.1", u.port or 5432))
    return proxy, u.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
