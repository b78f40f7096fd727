"""Issue 13 finding 3: one storage element answering garbage to ``/info`` must not stop
the admin's poll round for the others (a running admin, a real SE, a fake one)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.database import TestDatabase
from tests.support.system import System

# Each of these once ended the round: a count PostgreSQL's bigint cannot hold, a NUL
# and an over-long mode, a capacity that is not a number.
GARBAGE: list[dict[str, Any]] = [
    {"mode": "rw", "capacity": {"total_bytes": 2**70}},
    {"mode": "r\x00w", "capacity": {"total_bytes": 1}},
    {"mode": "rw" * 500, "capacity": {}},
    {"mode": "rw", "capacity": {"total_bytes": "lots", "file_count": [1]}},
    {"mode": "rw", "capacity": "lots", "backend": {"x": 1}},
]


class FakeSE:
    """Answers ``/api/v1/info`` and ``/health/ready`` with whatever ``info`` holds."""

    def __init__(self, storage_id: str) -> None:
        self.info: dict[str, Any] = {"storage_id": storage_id}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                body = json.dumps(
                    fake.info if self.path == "/api/v1/info" else {"status": "ok"}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    # Its own database: the session's admin keeps its signing keys under another KEK.
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_pollgarbage")
    sys_ = System(tmp_path_factory.mktemp("poll-garbage"), db)
    try:
        yield sys_
    finally:
        sys_.stop()
        db.drop()


def _last_seen(system: System, storage_id: str) -> datetime | None:
    rows = system.admin.sql(
        "SELECT last_seen_at FROM admin.storage_elements WHERE storage_id = $1", storage_id
    )
    return rows[0]["last_seen_at"] if rows else None


def test_garbage_from_one_se_does_not_stop_the_round(system: System) -> None:
    real = system.add_se("rw")
    # Whichever of the two a round applies first, an exception from the fake's row
    # used to end the round ("poll round failed" in the log, the rest not recorded).
    fake_id = f"a-fake-{uuid.uuid4().hex[:6]}"
    fake = FakeSE(fake_id)
    try:
        now = datetime.now(UTC)
        system.admin.sql(
            "INSERT INTO admin.storage_elements (storage_id, name, url, mode, status, backend,"
            " total_bytes, used_bytes, available_bytes, file_count, created_at, updated_at)"
            " VALUES ($1, $2, $3, 'rw', 'online', 'local', 0, 0, 0, 0, $4, $4)",
            fake_id,
            fake_id,
            fake.url,
            now,
        )
        for garbage in GARBAGE:
            fake.info = {"storage_id": fake_id, "backend": "local", **garbage}
            mark = datetime.now(UTC)
            deadline = time.monotonic() + 30
            while True:
                seen = _last_seen(system, real.id)
                if seen is not None and seen > mark:
                    break
                assert time.monotonic() < deadline, f"the round stopped at {garbage!r}"
                time.sleep(0.2)
        assert "poll round failed" not in system.admin.process.log()
    finally:
        fake.close()
        system.admin.sql("DELETE FROM admin.storage_elements WHERE storage_id = $1", fake_id)
