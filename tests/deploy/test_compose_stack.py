"""The production compose file, really run (issue 18): the real docker-compose.yml with only
tests/deploy/docker-compose.test.yml over it (local stand-in images, host networking), every
health check waited for, then the README's smoke flows through the gateway -- sign in,
upload temporary and permanent, search, download with Range, a signed link, the SE on S3,
an SE restarted keeping its files, the whole stack down and up keeping everything.

Run by `make test-deploy` (tests/deploy/run.sh builds the images first); everything the
stack made (containers, volumes, network) is removed at the end."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "http://127.0.0.1:8080"
PROJECT = "artstore-deploytest"
OVERRIDE = ROOT / "tests" / "deploy" / "docker-compose.test.yml"
# The host already runs PostgreSQL and Redis on 5432 and 6379; under host networking the
# stack's own must use other ports (the production file reads these two).
PORTS = {"POSTGRES_PORT": "15432", "REDIS_PORT": "16379"}
UP_TIMEOUT = 420.0


def _compose(env_file: Path, files: list[Path], *args: str, timeout: float = 600) -> str:
    cmd = ["docker-compose", "--env-file", str(env_file), "-p", PROJECT]
    for f in files:
        cmd += ["-f", str(f)]
    done = subprocess.run(
        [*cmd, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"docker-compose {args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _render(env_file: Path, out: Path) -> Path:
    """docker-compose.yml with the test override over it, as compose merges them, less the
    published ports: with every container on the host network there is nothing to publish,
    and Debian's docker-compose (1.29) refuses ports with host networking (an override can
    add ports, never remove them)."""
    merged = yaml.safe_load(
        _compose(env_file, [ROOT / "docker-compose.yml", OVERRIDE], "config", timeout=60)
    )
    for svc in merged["services"].values():
        svc.pop("ports", None)
    out.write_text(yaml.safe_dump(merged, sort_keys=False))
    return out


@dataclass
class Stack:
    env_file: Path
    rendered: Path
    password: str

    def compose(self, *args: str, timeout: float = 600) -> str:
        return _compose(self.env_file, [self.rendered], *args, timeout=timeout)

    def containers(self) -> dict[str, dict[str, Any]]:
        """Service name -> `docker inspect` of its (first) container."""
        ids = self.compose("ps", "-a", "-q").split()
        if not ids:
            return {}
        out = subprocess.run(
            ["docker", "inspect", *ids], capture_output=True, text=True, check=True, timeout=60
        )
        found: dict[str, dict[str, Any]] = {}
        for c in json.loads(out.stdout):
            found.setdefault(c["Config"]["Labels"]["com.docker.compose.service"], c)
        return found

    def up(self) -> None:
        try:
            self.compose("up", "-d", "--no-build")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.all_logs(list(self.containers()))}") from None
        self.wait_healthy()

    def wait_healthy(self) -> None:
        """Every long-running container healthy, the one-shots exited 0."""
        deadline = time.monotonic() + UP_TIMEOUT
        pending: list[str] = []
        while time.monotonic() < deadline:
            pending = []
            for name, c in self.containers().items():
                state = c["State"]
                if name in ("migrate", "register"):
                    if state["Status"] != "exited":
                        pending.append(name)
                    else:
                        assert state["ExitCode"] == 0, f"{name} failed:\n{self.logs(name)}"
                elif state.get("Health", {}).get("Status") != "healthy":
                    assert state["Status"] in ("running", "created", "restarting"), (
                        f"{name} {state['Status']}:\n{self.logs(name)}"
                    )
                    pending.append(name)
            if not pending:
                return
            time.sleep(2)
        raise AssertionError(f"not healthy in time: {pending}\n" + self.all_logs(pending))

    def logs(self, name: str) -> str:
        done = subprocess.run(
            ["docker", "logs", "--tail", "60", self.containers()[name]["Id"]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout + done.stderr

    def all_logs(self, names: list[str]) -> str:
        return "\n".join(f"--- {n}\n{self.logs(n)}" for n in names)

    def token(self) -> str:
        r = httpx.post(
            f"{GATEWAY}/api/v1/auth/token",
            data={"grant_type": "password", "username": "admin", "password": self.password},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="artstore-deploy-") as tmp:
        env_file = Path(tmp) / ".env"
        password = secrets.token_hex(16)
        values = {
            "POSTGRES_PASSWORD": secrets.token_hex(24),
            "ADMIN_PASSWORD": password,
            "AM_KEY_ENCRYPTION_KEY": secrets.token_hex(24),
            "QM_LINK_SECRET": secrets.token_hex(24),
            "MINIO_ROOT_PASSWORD": secrets.token_hex(24),
            **PORTS,
        }
        env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        os.chmod(env_file, 0o600)
        s = Stack(env_file, _render(env_file, Path(tmp) / "compose.yml"), password)
        s.compose("down", "-v", "--remove-orphans")  # a previous run cut short
        try:
            s.up()
            yield s
        finally:
            s.compose("down", "-v", "--remove-orphans")


@dataclass
class Uploaded:
    file_id: str
    body: bytes
    copies: list[str]


def _upload(client: httpx.Client, retention: str, body: bytes, name: str) -> Uploaded:
    r = client.post(
        "/api/v1/files/upload",
        data={"retention_policy": retention, "tags": "deploytest"},
        files={"file": (name, body, "text/plain")},
    )
    assert r.status_code in (200, 201), r.text
    out = r.json()
    return Uploaded(out["file_id"], body, [c["storage_element_id"] for c in out["copies"]])


@pytest.fixture(scope="module")
def files(stack: Stack) -> dict[str, Uploaded]:
    with httpx.Client(base_url=GATEWAY, timeout=60) as c:
        c.headers["Authorization"] = f"Bearer {stack.token()}"
        tag = uuid.uuid4().hex[:8]
        return {
            "temporary": _upload(c, "temporary", b"temporary " * 500, f"temp-{tag}.txt"),
            "permanent": _upload(c, "permanent", b"permanent " * 500, f"perm-{tag}.txt"),
        }


def _client(stack: Stack) -> httpx.Client:
    c = httpx.Client(base_url=GATEWAY, timeout=60)
    c.headers["Authorization"] = f"Bearer {stack.token()}"
    return c


def _assert_readable(stack: Stack, files: dict[str, Uploaded]) -> None:
    with _client(stack) as c:
        for f in files.values():
            r = c.get(f"/api/v1/files/{f.file_id}/download")
            assert r.status_code == 200 and r.content == f.body


def test_every_service_is_healthy_behind_one_gateway(stack: Stack) -> None:
    assert httpx.get(f"{GATEWAY}/gateway/health", timeout=10).status_code == 200
    assert httpx.get(f"{GATEWAY}/docs", timeout=10).status_code == 200
    with _client(stack) as c:
        me = c.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json()["user"]["username"] == "admin"
        ses = c.get("/api/v1/storage-elements").json()["items"]
    # the register one-shot told the admin about all three SEs
    assert {s["storage_id"] for s in ses} >= {"se-edit-1", "se-rw-1", "se-rw-2"}
    for name in ("admin", "ingester", "query"):
        doc = httpx.get(f"{GATEWAY}/{name}/openapi.json", timeout=10)
        assert doc.status_code == 200 and doc.json()["paths"]
    assert httpx.get(f"{GATEWAY}/nothing/here", timeout=10).status_code == 404


def test_uploads_land_on_their_ses(files: dict[str, Uploaded]) -> None:
    assert files["temporary"].copies == ["se-edit-1"]
    assert set(files["permanent"].copies) <= {"se-rw-1", "se-rw-2"}
    assert files["permanent"].copies


def test_search_download_range_and_signed_link(stack: Stack, files: dict[str, Uploaded]) -> None:
    perm = files["permanent"]
    with _client(stack) as c:
        found = c.get("/api/v1/search", params={"tags": "deploytest", "limit": 100}).json()
        assert {perm.file_id, files["temporary"].file_id} <= {i["file_id"] for i in found["items"]}
        meta = c.get(f"/api/v1/files/{perm.file_id}").json()
        assert meta["size"] == len(perm.body)
        part = c.get(f"/api/v1/files/{perm.file_id}/download", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == perm.body[:100]
        link = c.post(f"/api/v1/files/{perm.file_id}/link", json={"expires_in": 600})
        assert link.status_code == 201, link.text
        url = link.json()["url"]
    assert url.startswith(GATEWAY + "/")  # QM_PUBLIC_URL is the gateway
    got = httpx.get(url, timeout=60)  # no token
    assert got.status_code == 200 and got.content == perm.body


def test_an_se_on_s3_stores_and_serves(stack: Stack) -> None:
    """se-rw-2 keeps its blobs on the S3 server (MinIO's stand-in): a permanent file
    placed there reads back through the gateway."""
    with _client(stack) as c:
        se = c.get("/api/v1/storage-elements/se-rw-2").json()
        assert se["backend"] == "s3", se
        body = b"on s3 " * 300
        for n in range(12):  # placement picks the SE; upload until one copy is on se-rw-2
            up = _upload(c, "permanent", body + str(n).encode(), f"s3-{n}.txt")
            if "se-rw-2" in up.copies:
                break
        else:
            raise AssertionError(f"no permanent upload placed on se-rw-2: {se}")
        r = c.get(f"/api/v1/files/{up.file_id}/download")
        assert r.status_code == 200 and r.content == up.body
    info = httpx.get("http://127.0.0.1:8012/api/v1/info", timeout=10).json()
    assert "s3" in json.dumps(info).lower()


def test_an_se_restarted_keeps_its_files(stack: Stack, files: dict[str, Uploaded]) -> None:
    for name in ("se-edit-1", "se-rw-1"):
        cid = stack.containers()[name]["Id"]
        subprocess.run(["docker", "restart", cid], check=True, capture_output=True, timeout=120)
    stack.wait_healthy()
    _assert_readable(stack, files)


def test_down_and_up_keeps_everything(stack: Stack, files: dict[str, Uploaded]) -> None:
    stack.compose("down")  # volumes kept
    stack.up()
    _assert_readable(stack, files)
    with _client(stack) as c:
        ids = {f.file_id for f in files.values()}
        found = c.get("/api/v1/search", params={"tags": "deploytest", "limit": 100}).json()
        assert ids <= {i["file_id"] for i in found["items"]}


def test_the_cli_at_one_address(stack: Stack, files: dict[str, Uploaded], tmp_path: Path) -> None:
    """ARTSTORE_URL, the gateway's, serves every command: login (admin), ls (the admin's
    files view, /api/v1/admin/files), info (query)."""
    env = {
        **os.environ,
        "ARTSTORE_URL": GATEWAY,
        "ARTSTORE_PASSWORD": stack.password,
        "ARTSTORE_CONFIG_DIR": str(tmp_path),
    }
    for name in ("ARTSTORE_ADMIN_URL", "ARTSTORE_INGESTER_URL", "ARTSTORE_QUERY_URL"):
        env.pop(name, None)
    cli = str(Path(sys.executable).parent / "artstore")

    def run(*args: str) -> str:
        done = subprocess.run(
            [cli, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"artstore {args}: {done.stdout}{done.stderr}"
        return done.stdout

    run("login", "--username", "admin")
    listed = json.loads(run("ls", "--json"))
    assert files["permanent"].file_id in json.dumps(listed)
    info = run("info", files["temporary"].file_id)
    assert files["temporary"].file_id in info
