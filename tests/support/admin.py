"""The admin module under test: a real process on its own fresh database, and helpers
that get tokens and create users and service accounts through its API."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess, free_port

ADMIN_PASSWORD = "bootstrap-admin-pw-123"
# The admin as deployed behind a TLS proxy: its public URL (the issuer) is not the address
# the tests reach it at (ADMIN_URL).
ISSUER = "https://admin.artstore.test"
AUDIENCE = "artstore"


class AdminUnderTest:
    __test__ = False

    def __init__(self, root: Path, db: TestDatabase, **env: str) -> None:
        self.db = db
        port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        base = {
            "DATABASE_URL": db.url,
            "ADMIN_URL": f"http://127.0.0.1:{port}",
            "AM_PUBLIC_URL": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            "AM_DATA_DIR": str(root / "data"),
            "AM_KEY_ENCRYPTION_KEY": "test-kek-" + uuid.uuid4().hex,
            "AM_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "AM_SE_POLL_INTERVAL": "1",
            "AM_SE_TIMEOUT": "2",
            "LOG_FORMAT": "json",
            **env,
        }
        self.process = ServiceProcess("admin", base, port, root / f"admin-{port}.log")

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"

    def start(self) -> AdminUnderTest:
        self.process.start()
        return self

    # -- tokens ------------------------------------------------------------------------
    def token_request(self, data: dict[str, str], **kw: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v1/auth/token", data=data, timeout=30, **kw)

    def password_grant(self, username: str, password: str, **extra: str) -> dict[str, Any]:
        r = self.token_request(
            {"grant_type": "password", "username": username, "password": password, **extra}
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def client_grant(self, client_id: str, secret: str, **extra: str) -> dict[str, Any]:
        r = self.token_request(
            {"grant_type": "client_credentials", **extra},
            auth=(client_id, secret),
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def admin_token(self) -> str:
        return str(self.password_grant("admin", ADMIN_PASSWORD)["access_token"])

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    # -- things to log in with -------------------------------------------------------
    def create_user(self, roles: list[str], password: str = "correct horse battery") -> Any:  # noqa: S107
        name = f"u-{uuid.uuid4().hex[:10]}"
        with self.client(self.admin_token()) as c:
            r = c.post(
                "/api/v1/users",
                json={"username": name, "password": password, "roles": roles},
            )
        assert r.status_code == 201, r.text
        return {**r.json(), "password": password}

    def user_token(self, roles: list[str]) -> str:
        user = self.create_user(roles)
        return str(self.password_grant(user["username"], user["password"])["access_token"])

    def create_sa(self, scopes: list[str]) -> Any:
        with self.client(self.admin_token()) as c:
            r = c.post(
                "/api/v1/service-accounts",
                json={"name": f"sa-{uuid.uuid4().hex[:10]}", "scopes": scopes},
            )
        assert r.status_code == 201, r.text
        return r.json()

    def sa_token(self, scopes: list[str]) -> str:
        sa = self.create_sa(scopes)
        return str(self.client_grant(sa["client_id"], sa["client_secret"])["access_token"])

    # -- the database beneath ----------------------------------------------------------
    def sql(self, query: str, *args: Any) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self.db.url.replace("+asyncpg", ""))
            try:
                return [dict(r) for r in await conn.fetch(query, *args)]
            finally:
                await conn.close()

        return asyncio.run(run())


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def header_of(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))
