"""First start: an admin user and the service accounts the other services use.

Each is created only when absent, under a PostgreSQL lock so replicas starting
together create them once. An account made by an earlier version is given the scopes
this version's services need of it (:data:`ACCOUNT_SCOPES`; scopes are only added) on
every start: the code that needs a scope is what knows it, a deployment upgrades by
restarting the admin, and the change goes through the service layer, so it is audited
like any other (a data migration could not write the audit chain).

Generated secrets are written (0600) to ``AM_BOOTSTRAP_CREDENTIALS_FILE`` (for
`artstore up` to print on its own terminal, for an operator to read once) and never
to a log line: logs are shipped, kept and read by more people than the admin's
password should be.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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
    # storage:write: they exchange tokens for SE-bound ones (architecture §10).
    "ingester": ["files:read", "files:write", "files:delete", "storage:read", "storage:write"],
    "query": ["files:read", "storage:read", "storage:write"],
    "storage-element": ["storage:read"],
    # The job worker: SE maintenance and repair copies (SE-bound tokens), the registry.
    "worker": ["files:read", "files:write", "storage:read", "storage:write", "admin:read"],
}


def _write_credentials(path: Path, new: dict[str, Any]) -> None:
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text())
    data.update(new)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover of a crash may have another mode: O_CREAT keeps it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


async def _upgrade(session: AsyncSession, name: str) -> None:
    """Scopes this version needs that an older bootstrap did not give (``storage:write``
    for the ingester and query, which exchange tokens: architecture §10)."""
    if name not in ACCOUNT_SCOPES:
        return
    added = await accounts.grant_scopes(
        session, SYSTEM, name, ACCOUNT_SCOPES[name], "bootstrap: scopes this version needs"
    )
    if added:
        log.warning("bootstrap account %r given the scopes %s", name, " ".join(added))


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
            created[name] = {"client_id": row.client_id, "client_secret": secret}
        for name in names:
            await _upgrade(session, name)
    if created:
        path = settings.bootstrap_credentials_file
        await asyncio.to_thread(_write_credentials, path, created)
        # Names and the path only: nothing else can tell these secrets again, and a log
        # line must not be the place they are read from.
        log.warning(
            "bootstrap credentials of %s written to %s (mode 0600): read them once, then "
            "keep them in your secret store",
            ", ".join(sorted(created)),
            path,
        )
    return created
