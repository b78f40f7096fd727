"""Services under test run as real processes; this starts, waits for and stops them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """``artstore serve <service>`` as a child process with its own environment.

    ``host``, when given, is the address it listens on and is reached at (else its own
    host setting, reached at 127.0.0.1); ``wrap`` is a command the
    service runs under, which must exec it (``ip netns exec NAME``: tests/support/netns.py),
    so that the child's pid is the service's own.
    """

    def __init__(
        self,
        service: str,
        env: dict[str, str],
        port: int,
        log_path: Path,
        *,
        host: str | None = None,
        wrap: Sequence[str] = (),
    ) -> None:
        self.service = service
        self.env = env
        self.port = port
        self.log_path = log_path
        self.host = host
        self.wrap = list(wrap)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host or '127.0.0.1'}:{self.port}"

    def start(self, extra_env: dict[str, str] | None = None, wait: bool = True) -> ServiceProcess:
        env = {**os.environ, **self.env, **(extra_env or {})}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                *self.wrap,
                sys.executable,
                "-m",
                "artstore.cli.main",
                "serve",
                self.service,
                "--port",
                str(self.port),
                *(["--host", self.host] if self.host else []),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until /health/live answers (the app is up only after recovery finished)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.service} exited with {self.proc.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.service} not ready in {timeout}s:\n{self.log()}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""
