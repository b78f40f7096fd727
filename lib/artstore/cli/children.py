"""Services of ``artstore up`` as child processes, each logging to its own file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0


class UpError(Exception):
    """A start-up failure worth a plain message rather than a traceback."""


@dataclass
class Child:
    """One service as a child process (``artstore serve <service>``), logging to a file."""

    name: str
    label: str
    service: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "artstore.cli.main", "serve", self.service],
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def check_alive(self) -> None:
        code = self.proc.poll() if self.proc else None
        if code is not None:
            raise UpError(f"{self.name} exited with code {code}; its log ends with:\n{self.tail()}")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until ``/health/ready`` answers 200 (ok or degraded)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    if client.get(f"{self.url}/health/ready").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        raise UpError(f"{self.name} not ready after {timeout:.0f}s; log ends with:\n{self.tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL (also on a second Ctrl-C)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            self.proc.kill()
            self.proc.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
