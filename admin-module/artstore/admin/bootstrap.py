"""First start: an admin user and the service accounts the other services use.

Each is created only when absent, under a PostgreSQL lock so replicas starting
together create them once. Generated secrets are logged once and written (0600) to
``AM_DATA_DIR/bootstrap-credentials.json`` for `artstore up` to print.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from artstore.admin import locks
from artstore.admin.audit.service import SYSTEM
from artstore.admin.passwords import new_secret
from artstore.admin.service_accounts import service as accounts
from artstore.admin.service_accounts.schemas import ServiceAccountCreate
from artstore.admin.state import AdminState
from artstore.admin.users import service as users
from artstore.admin.users.schemas import UserCreate

log = logging.getLogger("artstore.admin.bootstrap")

ACCOUNT_SCOPES: dict[str, list[str]] = {
    "ingester": ["files:read", "files:write", "files:delete", "storage:read"],
    "query": ["files:read", "storage:read"],
    "storage-element": ["storage:read"],
}
CREDENTIALS_FILE = "bootstrap-credentials.json"


def _write_credentials(path: Path, new: dict[str, Any]) -> None:
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text())
    data.update(new)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


async def bootstrap(state: AdminState) -> dict[str, Any]:
    """What was created (with secrets), for the log and the credentials file."""
    settings = state.settings
    created: dict[str, Any] = {}
    async with locks.held(state.engine, locks.BOOTSTRAP), state.sessions() as session:
        if await users.by_username(session, settings.bootstrap_admin_username) is None:
            password = settings.bootstrap_admin_password or new_secret()
            await users.create(
                session,
                SYSTEM,
                UserCreate(
                    username=settings.bootstrap_admin_username,
                    password=password,
                    roles=["admin"],
                    full_name="Administrator",
                ),
            )
            if not settings.bootstrap_admin_password:
                created["admin"] = {
                    "username": settings.bootstrap_admin_username,
                    "password": password,
                }
            log.warning("bootstrap admin user %r created", settings.bootstrap_admin_username)
        names = [n.strip() for n in settings.bootstrap_service_accounts.split(",") if n.strip()]
        for name in names:
            if await accounts.by_name(session, name) is not None:
                continue
            body = ServiceAccountCreate(
                name=name,
                scopes=ACCOUNT_SCOPES.get(name, ["storage:read"]),
                description=f"bootstrap account of the {name}",
            )
            row, secret = await accounts.create(session, SYSTEM, body, settings.sa_secret_ttl_days)
            created[name] = {"client_id": row["client_id"], "client_secret": secret}
    if created:
        # Shown once: nothing else can tell these secrets again.
        log.warning(
            "bootstrap credentials (shown once; also in %s): %s",
            settings.data_dir / CREDENTIALS_FILE,
            json.dumps(created),
        )
        await asyncio.to_thread(_write_credentials, settings.data_dir / CREDENTIALS_FILE, created)
    return created
