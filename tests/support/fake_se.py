"""A rogue storage element: answers ``/api/v1/info`` and ``/health/ready`` like a real one
and records the ``Authorization`` header of every other request (issue 13: what an SE
registered by an attacker would capture). Every other request is answered 503."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def info_for(storage_id: str, mode: str = "edit") -> dict[str, Any]:
    """An ``/api/v1/info`` body good enough for the admin, the ingester and the query."""
    ops = {
        "edit": ["upload", "download", "update", "delete"],
        "rw": ["upload", "download", "update"],
    }.get(mode, ["download"])
    return {
        "storage_id": storage_id,
        "name": storage_id,
        "mode": mode,
        "status": "online",
        "backend": "local",
        "allowed_operations": ops,
        "capacity": {
            "total_bytes": 10**12,
            "used_bytes": 0,
            "available_bytes": 10**12,
            "file_count": 0,
        },
    }


class FakeSE:
    __test__ = False

    def __init__(self, info: dict[str, Any] | None = None, *, answer_after: float = 0.0) -> None:
        """``answer_after``: seconds to wait (body read) before the 503 of a request other
        than info/ready: an upload fails only after the other copies of it are stored."""
        self.id = f"fake-{uuid.uuid4().hex[:8]}"
        self.info = info or info_for(self.id)
        self.info["storage_id"] = self.id
        self.captured: list[tuple[str, str, str]] = []  # (method, path, authorization)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                if path == "/api/v1/info":
                    self._answer(200, fake.info)
                    return
                if path == "/health/ready":
                    self._answer(200, {"status": "ok"})
                    return
                auth = self.headers.get("Authorization") or ""
                with fake._lock:
                    fake.captured.append((self.command, path, auth))
                if answer_after:
                    time.sleep(answer_after)
                self._answer(503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": "fake"}})

            do_GET = do_POST = do_PATCH = do_DELETE = do_HEAD = do_PUT = _any

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tokens(self) -> list[str]:
        """The distinct bearer tokens received, in order."""
        with self._lock:
            seen = [a.partition(" ")[2] for _, _, a in self.captured if a]
        return list(dict.fromkeys(seen))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
