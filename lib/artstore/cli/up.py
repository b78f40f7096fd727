"""``artstore up``: ArtStore on this machine with local defaults (DESIGN §9).

For now it runs: PostgreSQL (an embedded server under ``<data_dir>/postgres`` when no
``DATABASE_URL`` is given), the migrations, a DEV-ONLY token issuer standing in for the
admin module (see :mod:`artstore.cli.devissuer`) and one storage element as a child
process. Ctrl-C (or SIGTERM) stops everything; running it again reuses the data.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import make_url

from artstore.cli.devissuer import DEV_TOKEN_TTL, JwksServer, load_or_create_key, mint_token

HOST = "127.0.0.1"
ISSUER_PORT = 8000
SE_ID = "se-local-1"
SE_MODE = "rw"
SE_PORT = 8010
DATABASE_NAME = "artstore"
READY_TIMEOUT = 90.0
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


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def prepare_database(root: Path, database_url: str, console: Console) -> tuple[str, str]:
    """The catalog URL (embedded server when ``database_url`` is empty), migrated."""
    from artstore.common.devdb import create_database, embedded_server_url, with_database
    from artstore.common.migrate import upgrade

    label = "PostgreSQL"
    try:
        if not database_url:
            label = "PostgreSQL (embedded)"
            console.print(
                f"starting the embedded PostgreSQL in {root / 'postgres'} …", soft_wrap=True
            )
            admin_url = embedded_server_url(root / "postgres" / "data")
            create_database(admin_url, DATABASE_NAME)
            database_url = with_database(admin_url, DATABASE_NAME)
        console.print("applying database migrations …")
        upgrade(database_url)
    except Exception as exc:
        raise UpError(f"the database is not usable: {exc}") from exc
    return database_url, label


def se_child(root: Path, database_url: str, jwks_url: str) -> Child:
    env = {
        "SE_ID": SE_ID,
        "SE_MODE": SE_MODE,
        "SE_PORT": str(SE_PORT),
        "SE_DATA_DIR": str(root / "storage" / SE_ID),
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "JWKS_URL": jwks_url,
        "JWT_ISSUER": "artstore",
        "JWT_AUDIENCE": "artstore",
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
    }
    log = root / "logs" / f"{SE_ID}.log"
    return Child(
        f"storage element {SE_ID}", f"SE {SE_ID} ({SE_MODE})", "storage-element", SE_PORT, env, log
    )


def print_summary(
    console: Console,
    root: Path,
    children: list[Child],
    issuer_url: str,
    db: tuple[str, str],
    token: str,
) -> None:
    table = Table(title="ArtStore is up (local development)", title_justify="left")
    table.add_column("service", no_wrap=True)
    table.add_column("URL", overflow="fold")
    table.add_column("Swagger UI", overflow="fold")
    for child in children:
        table.add_row(child.label, child.url, f"{child.url}/docs")
    table.add_row("token issuer (DEV ONLY)", issuer_url.split("/.well-known")[0], "-")
    console.print(table)
    for label, value in (
        ("JWKS", issuer_url),
        (db[1], make_url(db[0]).render_as_string(hide_password=True)),
        ("data", str(root)),
        ("logs", str(root / "logs")),
    ):
        console.print(f"{label}: {value}", soft_wrap=True, markup=False, highlight=False)
    console.print(
        f"\n[bold yellow]DEV-ONLY access token[/] (every scope, {DEV_TOKEN_TTL // 3600} h; "
        f"a fresh one: artstore dev-token --data-dir {root}):",
        soft_wrap=True,
    )
    console.print(f"export TOKEN={token}", soft_wrap=True, markup=False, highlight=False)
    se = children[0].url
    auth = 'curl -H "Authorization: Bearer $TOKEN"'
    console.print("\ntry it:", style="bold")
    for line in (
        f"{auth} -F file=@README.md {se}/api/v1/files",
        f"{auth} {se}/api/v1/files",
        f"{auth} -OJ {se}/api/v1/files/<file_id>/download",
    ):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    console.print("\nready; press Ctrl-C to stop")


def run_up(data_dir: str, database_url: str) -> int:
    """Start everything, print how to use it, wait for Ctrl-C/SIGTERM; 0 on a clean stop."""
    root = Path(data_dir).expanduser().resolve()
    console = Console()
    # Explicit handlers: SIGTERM must stop us cleanly too, and SIGINT may have been
    # inherited as ignored (a background job of a non-interactive shell).
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[Child] = []
    issuer: JwksServer | None = None
    try:
        for port in (ISSUER_PORT, SE_PORT):
            if _listening(port):
                raise UpError(f"port {port} is already in use (another `artstore up` running?)")
        root.mkdir(parents=True, exist_ok=True)
        db = prepare_database(root, database_url, console)
        key = load_or_create_key(root)
        try:
            issuer = JwksServer(key, HOST, ISSUER_PORT)
        except OSError as exc:
            raise UpError(f"cannot serve the dev JWKS on {HOST}:{ISSUER_PORT}: {exc}") from exc
        children.append(se_child(root, db[0], issuer.url))
        for child in children:
            console.print(f"starting {child.name} on {child.url} …", soft_wrap=True)
            child.start()
        for child in children:
            child.wait_ready()
        print_summary(console, root, children, issuer.url, db, mint_token(key))
        sys.stdout.flush()
        while True:
            for child in children:
                child.check_alive()
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("\nstopping …")
        return 0
    except UpError as exc:
        console.print("[bold red]artstore up failed:[/]", escape(str(exc)), highlight=False)
        return 1
    finally:
        for child in reversed(children):
            child.stop()
        if issuer is not None:
            issuer.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # An embedded PostgreSQL stops itself when this process exits (atexit).
