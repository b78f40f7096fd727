"""`artstore up` and the tests from a checkout whose path is 150 characters long (issue 17):
the embedded PostgreSQL's unix socket must not follow the checkout into a path longer
than a socket address holds (107 bytes).

The checkout is a `git clone --local` of HEAD at such a path; no venv is made for it: this
venv's python runs it with the clone's source folders first on PYTHONPATH (checked: the
code that runs is the clone's). `artstore up` (no DATABASE_URL: the embedded PostgreSQL
under the clone's `.artstore/`) runs in a network namespace of its own (`unshare --net`),
so its fixed ports never meet another `artstore up` of a parallel test; a driver inside
the namespace waits for it, logs in, uploads and downloads a file, and stops it with
Ctrl-C. Then one process-test file runs from the clone on the embedded test PostgreSQL
(no TEST_DATABASE_URL). Everything started is stopped: the namespace's processes die with
it (`--kill-child`), and the nested pytest's embedded server stops when it exits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import ensure_ip

ROOT = Path(__file__).resolve().parents[1]
LENGTH = 150
SOURCES = ("lib", "storage-element", "admin-module", "ingester-module", "query-module",
           "job-worker")  # fmt: skip
SUBSET = "tests/admin/test_last_admin.py"  # an admin process on the test database

pytestmark = pytest.mark.process

# Runs inside the namespace, cwd = the clone; prints one JSON line at the end.
DRIVER = r"""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import psutil

clone = Path.cwd()
env = {**os.environ, "PYTHONUNBUFFERED": "1"}
cli_env = {**env, "ARTSTORE_CONFIG_DIR": str(clone / ".cli")}
py = [sys.executable, "-m", "artstore.cli.main"]
result = {}

def cli(*args):
    done = subprocess.run([*py, *args], env=cli_env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"artstore {args}: {done.stdout} {done.stderr}")
    return done.stdout

up = subprocess.Popen([*py, "up"], env=env, stdin=subprocess.DEVNULL,
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
lines, password = [], ""
try:
    for line in up.stdout:
        lines.append(line.rstrip())
        if line.startswith("admin login: admin / "):
            password = line.removeprefix("admin login: admin / ").split()[0]
        if "press Ctrl-C to stop" in line:
            break
    else:
        raise SystemExit("up exited:\n" + "\n".join(lines))
    import artstore.cli
    result["code_from"] = artstore.cli.__file__
    cli("login", "--username", "admin", "--password", password)
    data = os.urandom(50_000) + b"long path"
    (clone / "doc.bin").write_bytes(data)
    uploaded = json.loads(cli("upload", str(clone / "doc.bin"), "--json"))
    file_id = (uploaded[0] if isinstance(uploaded, list) else uploaded)["file_id"]
    cli("download", file_id, "--output", str(clone / "back.bin"))
    result["round_trip"] = (clone / "back.bin").read_bytes() == data
    result["postgres"] = [l for l in lines if "embedded" in l.lower()][:2]
finally:
    children = psutil.Process(up.pid).children(recursive=True) if up.poll() is None else []
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
    try:
        rest = up.communicate(timeout=120)[0]
    except subprocess.TimeoutExpired:
        up.kill()
        rest = up.communicate()[0]
    _, alive = psutil.wait_procs(children, timeout=60)
    result["up_exit"] = up.returncode
    result["alive_after"] = [p.pid for p in alive]
    result["up_output"] = lines[-40:] + rest.splitlines()[-20:]
print(json.dumps(result))
"""


def _long_dir(base: Path) -> Path:
    """A folder under ``base`` whose absolute path is exactly ``LENGTH`` characters."""
    left = LENGTH - len(str(base)) - 1
    assert left > 20, base
    parts = []
    while left > 0:
        take = min(left, 60)
        if left - take == 1:  # never leave a single character for "/" alone
            take -= 2
        parts.append(("checkout-" + "x" * 60)[:take])
        left -= take + 1
    path = base.joinpath(*parts)
    assert len(str(path)) == LENGTH, (len(str(path)), path)
    return path


def _env(clone: Path) -> dict[str, str]:
    """The clone's code first; nothing of the parent test run's databases or coverage."""
    drop = ("TEST_DATABASE_URL", "DATABASE_URL", "REDIS_URL", "PYTEST_", "COV_", "COVERAGE_",
            "ARTSTORE_", "XDG_RUNTIME_DIR")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONPATH"] = os.pathsep.join(str(clone / s) for s in SOURCES)
    env["HOME"] = str(clone.parent)
    return env


@pytest.fixture
def clone() -> Iterator[Path]:
    # A folder anyone may pass through, as a checkout's parents are: the embedded server
    # runs as its own user when started by root (pytest's own tmp_path is 0700).
    tmp_path = Path(tempfile.mkdtemp(prefix="artstore-long-"))
    tmp_path.chmod(0o755)
    path = _long_dir(tmp_path)
    path.parent.mkdir(parents=True)
    done = subprocess.run(["git", "clone", "--quiet", "--local", str(ROOT), str(path)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    yield path
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_up_from_a_150_character_checkout(clone: Path) -> None:
    ensure_ip()
    driver = clone.parent / "driver.py"
    driver.write_text(DRIVER)
    done = subprocess.run(
        ["unshare", "--net", "--kill-child", "--", "sh", "-c",
         f'ip link set lo up && exec "{sys.executable}" "{driver}"'],
        cwd=clone, env=_env(clone), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code_from"].startswith(str(clone) + "/"), result["code_from"]
    assert result["round_trip"] is True, result
    assert result["up_exit"] == 0 and result["alive_after"] == [], result
    # The embedded server's data is in the clone, and its socket was not.
    assert (clone / ".artstore" / "postgres" / "data" / "PG_VERSION").exists()
    assert not list((clone / ".artstore").rglob(".s.PGSQL.*")), "a socket left behind"


def test_tests_from_a_150_character_checkout(clone: Path) -> None:
    """One process-test file from the clone, on the embedded test PostgreSQL."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         f"--basetemp={clone.parent / 'pt'}", SUBSET],
        cwd=clone, env=_env(clone), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout[-2000:]
    assert (clone / ".artstore" / "test-postgres" / "data" / "PG_VERSION").exists()
