"""``artstore up`` end to end: start the whole system, use it through the CLI (log in,
upload a folder, search, download), Ctrl-C, start again on the same data.

``up`` uses fixed ports (8000, 8010-8012, 8020, 8030, 8040), so this file's tests must not run
in parallel with another ``up``; xdist's ``loadfile`` keeps them on one worker.
"""

from __future__ import annotations

import json
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

from artstore.cli.devdb import create_database, drop_database, with_database
from tests.support.database import server_url

ROOT = Path(__file__).resolve().parents[1]
PORTS = (8000, 8010, 8011, 8012, 8020, 8030, 8040)
START_TIMEOUT = 240.0
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
        """Until the 'ready' line; returns the admin password printed before it."""
        deadline = time.monotonic() + timeout
        password = ""
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"up exited ({self.proc.wait(5)}):\n{self.text()}")
            if line.startswith("admin login: admin / "):
                password = line.removeprefix("admin login: admin / ").split()[0]
            if "press Ctrl-C to stop" in line:
                assert password, self.text()
                assert "ingester" in self.text() and "query" in self.text()
                return password
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
    for port in PORTS:
        assert not _listening(port), f"port {port} is taken; `artstore up` needs it"
    made: list[Up] = []

    class Started(Up):
        def __init__(self) -> None:
            super().__init__(tmp_path / "data", fresh_database_url)
            made.append(self)

    yield Started
    for up in made:
        up.close()


class Cli:
    """The ``artstore`` command with its own config dir (never the user's home)."""

    def __init__(self, config_dir: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ARTSTORE_")}
        self.env["ARTSTORE_CONFIG_DIR"] = str(config_dir)

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "artstore.cli.main", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout


def test_up_runs_the_whole_system_and_stops_cleanly(start_up: type[Up], tmp_path: Path) -> None:
    folder = tmp_path / "papers"
    folder.mkdir()
    files = {f"paper-{i}.txt": os.urandom(20_000) + f"zebra {i}".encode() for i in range(3)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    cli = Cli(tmp_path / "cli-config")

    first = start_up()
    password = first.wait_ready()
    # The generated secrets: on up's own terminal and in a 0600 file, in no log file.
    creds = tmp_path / "data" / "admin" / "bootstrap-credentials.json"
    assert creds.stat().st_mode & 0o777 == 0o600
    assert f"{creds} (mode 0600)" in first.text()
    secrets = [password, *(c["client_secret"] for c in json.loads(creds.read_text()).values()
                           if "client_secret" in c)]  # fmt: skip
    for log in (tmp_path / "data" / "logs").glob("*.log"):
        assert not any(s in log.read_text() for s in secrets), log
    assert httpx.get("http://127.0.0.1:8030/docs", timeout=30).status_code == 200
    # The job worker runs its queue and reads the registry with its own account.
    ready = httpx.get("http://127.0.0.1:8040/health/ready", timeout=30).json()
    assert ready["checks"]["queue"]["status"] == "ok", ready
    cli("login", "--username", "admin", "--password", password)
    uploaded = json.loads(cli("upload", str(folder), "--permanent", "--tag", "paper", "--json"))
    ids = {item["original_filename"]: item["file_id"] for item in uploaded}
    assert set(ids) == set(files)
    found = json.loads(cli("search", "--tag", "paper", "--json"))
    assert {item["file_id"] for item in found["items"]} == set(ids.values())
    for name, file_id in ids.items():
        out = tmp_path / "out" / name
        out.parent.mkdir(exist_ok=True)
        cli("download", file_id, "--output", str(out))
        assert out.read_bytes() == files[name]

    code, alive = first.stop()
    assert code == 0, first.text()
    assert alive == [], f"still running after Ctrl-C: {alive}"
    assert not any(_listening(p) for p in PORTS)

    # Second start: the same data, the same admin, the same files.
    second = start_up()
    assert second.wait_ready() == password
    name, file_id = next(iter(ids.items()))
    again = tmp_path / "again.txt"
    cli("login", "--username", "admin", "--password", password)
    cli("download", file_id, "--output", str(again))
    assert again.read_bytes() == files[name]

    code, alive = second.stop(signal.SIGTERM)  # as clean as Ctrl-C
    assert code == 0, second.text()
    assert alive == []
    assert not any(_listening(p) for p in PORTS)
