"""``artstore up``: the whole system on this machine, on an embedded default (architecture §9).

PostgreSQL (embedded under ``<data_dir>/postgres`` unless ``DATABASE_URL`` is given),
the migrations, then each service as its own process: the admin (8000), three local-disk
storage elements (8010 edit, 8011 and 8012 rw) registered with the admin, the ingester
(8020), the query module (8030) and the job worker (8040). Ctrl-C (or SIGTERM) stops
everything; running it again reuses the data.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from artstore.cli.children import HOST, Child, UpError
from artstore.cli.up_summary import print_summary

DATABASE_NAME = "artstore"
ADMIN_PORT, INGESTER_PORT, QUERY_PORT, WORKER_PORT = 8000, 8020, 8030, 8040
STORAGE_ELEMENTS = (("se-edit-1", "edit", 8010), ("se-rw-1", "rw", 8011), ("se-rw-2", "rw", 8012))
AUDIENCE = "artstore"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def prepare_database(root: Path, database_url: str, console: Console) -> tuple[str, str]:
    """The database URL (the embedded server when ``database_url`` is empty), migrated."""
    from artstore.cli.devdb import create_database, embedded_server_url, with_database
    from artstore.cli.migrate import upgrade

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


def _common_env(database_url: str) -> dict[str, str]:
    admin = f"http://{HOST}:{ADMIN_PORT}"
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "ADMIN_URL": admin,
        "JWKS_URL": f"{admin}/.well-known/jwks.json",
        # The issuer is the admin's URL: what every service derives from ADMIN_URL.
        "JWT_AUDIENCE": AUDIENCE,
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
        # A throwaway system on this machine: secrets a user exported for a quick try
        # (a short AM_BOOTSTRAP_ADMIN_PASSWORD) are accepted. Generated ones are strong.
        "ARTSTORE_DEV_MODE": os.environ.get("ARTSTORE_DEV_MODE", "1"),
    }


def admin_child(root: Path, env: dict[str, str]) -> Child:
    return Child(
        "admin",
        "admin",
        "admin",
        ADMIN_PORT,
        {
            **env,
            "AM_PORT": str(ADMIN_PORT),
            "AM_DATA_DIR": str(root / "admin"),
        },
        root / "logs" / "admin.log",
    )


def se_children(root: Path, env: dict[str, str]) -> list[Child]:
    return [
        Child(
            f"storage element {se_id}",
            f"storage element {se_id} ({mode})",
            "storage-element",
            port,
            {
                **env,
                "SE_ID": se_id,
                "SE_MODE": mode,
                "SE_PORT": str(port),
                "SE_DATA_DIR": str(root / "storage" / se_id),
            },
            root / "logs" / f"{se_id}.log",
        )
        for se_id, mode, port in STORAGE_ELEMENTS
    ]


def credentials(root: Path) -> dict[str, Any]:
    """What the admin's first start created (admin password, service-account secrets)."""
    path = root / "admin" / "bootstrap-credentials.json"
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError) as exc:
        raise UpError(f"the admin wrote no bootstrap credentials at {path}: {exc}") from exc


def edge_children(root: Path, env: dict[str, str], creds: dict[str, Any]) -> list[Child]:
    def account(name: str) -> tuple[str, str]:
        if name not in creds:
            raise UpError(f"no bootstrap credentials for the {name} service account")
        return str(creds[name]["client_id"]), str(creds[name]["client_secret"])

    ig_id, ig_secret = account("ingester")
    qm_id, qm_secret = account("query")
    wk_id, wk_secret = account("worker")
    query_url = f"http://{HOST}:{QUERY_PORT}"
    return [
        Child(
            "ingester",
            "ingester",
            "ingester",
            INGESTER_PORT,
            {
                **env,
                "IG_PORT": str(INGESTER_PORT),
                "IG_CLIENT_ID": ig_id,
                "IG_CLIENT_SECRET": ig_secret,
            },
            root / "logs" / "ingester.log",
        ),
        Child(
            "query",
            "query",
            "query",
            QUERY_PORT,
            {
                **env,
                "QM_PORT": str(QUERY_PORT),
                "QM_CLIENT_ID": qm_id,
                "QM_CLIENT_SECRET": qm_secret,
                "QM_PUBLIC_URL": query_url,
                "QM_DATA_DIR": str(root / "query"),
            },
            root / "logs" / "query.log",
        ),
        Child(
            "worker",
            "job worker",
            "worker",
            WORKER_PORT,
            {
                **env,
                "WK_PORT": str(WORKER_PORT),
                "WK_CLIENT_ID": wk_id,
                "WK_CLIENT_SECRET": wk_secret,
            },
            root / "logs" / "worker.log",
        ),
    ]


def admin_password(root: Path, creds: dict[str, Any]) -> str:
    """The bootstrap admin's password: from the first start, or from the environment."""
    password = os.environ.get("AM_BOOTSTRAP_ADMIN_PASSWORD") or creds.get("admin", {}).get(
        "password", ""
    )
    if not password:
        raise UpError(
            "the admin password is unknown: set AM_BOOTSTRAP_ADMIN_PASSWORD, or "
            f"remove {root / 'admin'} and the database to bootstrap again"
        )
    return str(password)


def register_storage_elements(ses: list[Child], password: str) -> None:
    """Make the admin know every SE (a known one answers 409, which is fine)."""
    admin = f"http://{HOST}:{ADMIN_PORT}"
    with httpx.Client(base_url=admin, timeout=30) as client:
        token = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "admin", "password": password},
        )
        if token.status_code != 200:
            raise UpError(f"cannot log in to the admin as 'admin': {token.text}")
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for se in ses:
            r = client.post("/api/v1/storage-elements", json={"url": se.url}, headers=headers)
            if r.status_code not in (201, 409):
                raise UpError(f"cannot register {se.name}: {r.status_code} {r.text}")


def _start(children: list[Child], console: Console) -> None:
    for child in children:
        console.print(f"starting {child.name} on {child.url} …", soft_wrap=True)
        child.start()
    for child in children:
        child.wait_ready()


def run_up(data_dir: str, database_url: str) -> int:
    """Start everything, print how to use it, wait for Ctrl-C/SIGTERM; 0 on a clean stop."""
    root = Path(data_dir).expanduser().resolve()
    # Not a terminal (a log, a test): wide enough that URLs are never folded.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    # Explicit handlers: SIGTERM must stop us cleanly too, and SIGINT may have been
    # inherited as ignored (a background job of a non-interactive shell).
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[Child] = []
    try:
        ports = [
            ADMIN_PORT,
            *(p for _, _, p in STORAGE_ELEMENTS),
            INGESTER_PORT,
            QUERY_PORT,
            WORKER_PORT,
        ]
        busy = [p for p in ports if _listening(p)]
        if busy:
            raise UpError(f"ports already in use: {busy} (another `artstore up` running?)")
        root.mkdir(parents=True, exist_ok=True)
        db = prepare_database(root, database_url, console)
        env = _common_env(db[0])
        admin = admin_child(root, env)
        children.append(admin)
        _start([admin], console)
        creds = credentials(root)
        password = admin_password(root, creds)
        ses = se_children(root, env)
        children += ses
        _start(ses, console)
        register_storage_elements(ses, password)
        edges = edge_children(root, env, creds)
        children += edges
        _start(edges, console)
        print_summary(console, root, children, db, password)
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
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # An embedded PostgreSQL stops itself when this process exits (atexit).
