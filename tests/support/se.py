"""A storage element under test: a real process, its data directory and a client."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.issuer import ALL_SCOPES, TestIssuer
from tests.support.process import ServiceProcess, free_port


class StorageElementUnderTest:
    __test__ = False

    def __init__(
        self,
        root: Path,
        issuer: TestIssuer,
        database_url: str,
        mode: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.id = f"se-{uuid.uuid4().hex[:8]}"
        self.data_dir = root / self.id
        self.issuer = issuer
        base_env = {
            "SE_ID": self.id,
            "SE_MODE": mode,
            "SE_DATA_DIR": str(self.data_dir),
            "SE_RESERVE_BYTES": "0",
            "DATABASE_URL": database_url,
            "JWKS_URL": issuer.jwks_url,
            "JWT_ISSUER": "artstore-test",
            "JWT_AUDIENCE": "artstore",
            "LOG_FORMAT": "json",
            "SE_CATALOG_RETRY_INTERVAL": "0.5",
            **(env or {}),
        }
        root.mkdir(parents=True, exist_ok=True)
        self.process = ServiceProcess(
            "storage-element", base_env, free_port(), root / f"{self.id}.log"
        )

    @property
    def url(self) -> str:
        return self.process.url

    def start(self, **extra_env: str) -> StorageElementUnderTest:
        self.process.start(extra_env)
        return self

    def restart(self, **extra_env: str) -> StorageElementUnderTest:
        self.process.stop()
        return self.start(**extra_env)

    def client(self, scopes: str = ALL_SCOPES, sub: str = "alice", **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.issuer.token(scopes, sub)}"} if scopes else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0, **kw)

    # -- inspection of the data directory ---------------------------------------------
    def tmp_entries(self) -> list[str]:
        tmp = self.data_dir / "tmp"
        return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []

    def blobs(self) -> list[Path]:
        files = self.data_dir / "files"
        return sorted(
            p for p in files.rglob("*") if p.is_file() and not p.name.endswith(".attr.json")
        )

    def attrs(self) -> list[Path]:
        return sorted((self.data_dir / "files").rglob("*.attr.json"))

    def orphan_blobs(self) -> list[Path]:
        return [b for b in self.blobs() if not Path(f"{b}.attr.json").exists()]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
