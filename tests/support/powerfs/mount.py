"""A powerfs mount driven by a test: mount, then ``cut()`` — unmount and rewrite the
backing directory to what was durable — then ``mount()`` again on that state.

Whoever uses the mount must be dead before ``cut()`` (a power cut ends every process):
the caller kills the SE first, then cuts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.process import ROOT


def _mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == target for line in f)


class PowerMount:
    def __init__(self, root: Path) -> None:
        self.backing = root / "backing"
        self.mountpoint = root / "mnt"
        self.report = root / "powerfs-report.json"
        self.cuts_dir = root / "cuts"
        self.log_path = root / "powerfs.log"
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.cuts = 0
        self.totals: dict[str, int] = {}

    def mount(self, timeout: float = 30.0) -> PowerMount:
        self.report.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.powerfs.daemon",
                    str(self.backing),
                    str(self.mountpoint),
                    str(self.report),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + timeout
        while not _mounted(self.mountpoint):  # polls the condition, not a guessed delay
            if self.proc.poll() is not None:
                raise RuntimeError(f"powerfs exited with {self.proc.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"powerfs not mounted in {timeout}s: {self.log()}")
            time.sleep(0.02)
        return self

    def cut(self) -> dict[str, int]:
        """Power off: drop the mount; the daemon rewrites the backing to the durable state."""
        assert self.proc is not None
        subprocess.run(["fusermount3", "-u", str(self.mountpoint)], check=True)
        code = self.proc.wait(120)
        self.proc = None
        if code != 0 or not self.report.exists():
            raise RuntimeError(f"powerfs rebuild failed ({code}): {self.log()}")
        stats: dict[str, int] = json.loads(self.report.read_text())
        self.cuts += 1
        for k, v in stats.items():
            self.totals[k] = self.totals.get(k, 0) + v
        return stats

    def snapshot(self, name: str, torn: bool = False) -> tuple[Path, dict[str, int]]:
        """A power cut the running processes never notice: the durable image, written to
        ``cuts/<name>`` while everything keeps running; (its path, the model's stats)."""
        name = f"{name}-torn" if torn else name
        os.mkdir(self.mountpoint / ".powerfs-cut" / name)
        out = self.cuts_dir / name
        stats: dict[str, int] = json.loads((self.cuts_dir / f"{name}.json").read_text())
        return out, stats

    def close(self) -> None:
        """Unmount without keeping score (teardown); lazily if something still uses it."""
        if self.proc is None:
            return
        if subprocess.run(["fusermount3", "-u", str(self.mountpoint)]).returncode != 0:
            subprocess.run(["fusermount3", "-uz", str(self.mountpoint)])
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""
