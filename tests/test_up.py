"""``artstore up`` end to end: start, use the printed dev token, Ctrl-C, start again.

``up`` uses fixed ports (8000 for the dev token issuer, 8010 for its storage element), so
this file's tests must not run in parallel with another ``up``; xdist's ``loadfile``
keeps them on one worker.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from artstore.common.devdb import create_database, drop_database, with_database
from tests.support.database import server_url

ROOT = Path(__file__).resolve().parents[1]
SE_URL = "http://127.0.0.1:8010"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Up:
    """``artstore up`` as a child process whose output is read line by line."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
        env.pop("REDIS_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "artstore.cli.main", "up", "--data-dir", str(data_dir)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def text(self) -> str:
        return "\n".join(self.output)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> str:
        """Until the 'ready' line; returns the dev token printed before it."""
        deadline = time.monotonic() + timeout
        token = ""
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"up exited ({self.proc.wait(5)}):\n{self.text()}")
            if line.startswith("export TOKEN="):
                token = line.removeprefix("export TOKEN=").strip()
            if "press Ctrl-C to stop" in line:
                assert token, self.text()
                return token
        raise AssertionError(f"up not ready in {timeout}s:\n{self.text()}")

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, list[psutil.Process]]:
        """Ctrl-C (or ``sig``); the exit code and the children still alive afterwards."""
        children = psutil.Process(self.proc.pid).children(recursive=True)
        assert children, "up has no child process"
        self.proc.send_signal(sig)
        code = self.proc.wait(STOP_TIMEOUT)
        _, alive = psutil.wait_procs(children, timeout=STOP_TIMEOUT)
        return code, alive

    def close(self) -> None:
        if self.proc.poll() is None:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                child.kill()
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def fresh_database_url() -> Iterator[str]:
    """A new, empty database on the test server (``up`` must migrate it itself)."""
    admin_url = server_url()
    name = f"artstore_up_{uuid.uuid4().hex[:8]}"
    create_database(admin_url, name, drop_first=True)
    yield with_database(admin_url, name)
    drop_database(admin_url, name)


@pytest.fixture
def start_up(tmp_path: Path, fresh_database_url: str) -> Iterator[type[Up]]:
    for port in (8000, 8010):
        assert not _listening(port), f"port {port} is taken; `artstore up` needs it"
    made: list[Up] = []

    class Started(Up):
        def __init__(self) -> None:
            super().__init__(tmp_path / "data", fresh_database_url)
            made.append(self)

    yield Started
    for up in made:
        up.close()


def test_up_serves_a_storage_element_and_stops_cleanly(start_up: type[Up], tmp_path: Path) -> None:
    data = os.urandom(64 * 1024) + "über".encode()
    first = start_up()
    token = first.wait_ready()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=SE_URL, headers=auth, timeout=30.0) as client:
        assert client.get("/docs", headers={}).status_code == 200
        r = client.post("/api/v1/files", files={"file": ("hello.bin", data, "text/plain")})
        assert r.status_code == 201, r.text
        meta = r.json()
        assert meta["uploaded_by"] == "dev"
        assert meta["storage_element_id"] == "se-local-1"
        file_id = meta["file_id"]
        assert client.get(f"/api/v1/files/{file_id}/download").content == data
        assert client.get("/api/v1/files").json()["total"] == 1

    key = tmp_path / "data" / "dev-issuer" / "private-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600

    code, alive = first.stop()
    assert code == 0, first.text()
    assert alive == [], f"still running after Ctrl-C: {alive}"
    assert not _listening(8010) and not _listening(8000)

    # Second start: same data, same signing key (the first token still works).
    second = start_up()
    second.wait_ready()
    with httpx.Client(base_url=SE_URL, headers=auth, timeout=30.0) as client:
        d = client.get(f"/api/v1/files/{file_id}/download")
        assert d.status_code == 200, d.text
        assert d.content == data
    fresh = subprocess.run(
        [
            sys.executable,
            "-m",
            "artstore.cli.main",
            "dev-token",
            "--data-dir",
            str(tmp_path / "data"),
            "--hours",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    r = httpx.get(
        f"{SE_URL}/api/v1/files/{file_id}",
        headers={"Authorization": f"Bearer {fresh}"},
        timeout=30.0,
    )
    assert r.status_code == 200, r.text

    code, alive = second.stop(signal.SIGTERM)  # as clean as Ctrl-C
    assert code == 0, second.text()
    assert alive == []
    assert not _listening(8010)
