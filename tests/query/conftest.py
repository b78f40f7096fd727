"""Query module fixtures.

Search tests run one query process against the session database and write catalog rows
straight into ``catalog.files`` (each test under its own storage ids), with tokens from
the stand-in issuer: fast, and the search SQL meets a real PostgreSQL. Download, link
and failover tests use a whole system (admin, SEs, query) from tests/support/system.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.issuer import ALL_SCOPES, TestIssuer
from tests.support.process import ServiceProcess, free_port


class SearchQuery:
    """A query process trusting the stand-in issuer, and SQL on its catalog."""

    __test__ = False

    def __init__(self, root: Path, issuer: TestIssuer, db: TestDatabase, **settings: str) -> None:
        self.issuer = issuer
        self.db = db
        port = free_port()
        env = {
            "DATABASE_URL": db.url,
            "JWKS_URL": issuer.jwks_url,
            "JWT_ISSUER": "artstore-test",
            "JWT_AUDIENCE": "artstore",
            "ADMIN_URL": "http://127.0.0.1:9",  # no admin: search needs none
            "QM_DATA_DIR": str(root / "data"),
            "QM_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "LOG_FORMAT": "json",
            **settings,
        }
        root.mkdir(parents=True, exist_ok=True)
        self.process = ServiceProcess("query", env, port, root / f"query-{port}.log")

    @property
    def url(self) -> str:
        return self.process.url

    def client(self, scopes: str = ALL_SCOPES) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.issuer.token(scopes)}"} if scopes else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def sql(self, query: str, *args: Any) -> list[dict[str, Any]]:
        async def run() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(self.db.url.replace("+asyncpg", ""))
            try:
                return [dict(r) for r in await conn.fetch(query, *args)]
            finally:
                await conn.close()

        return asyncio.run(run())


@pytest.fixture(scope="session")
def search_qm(
    issuer: TestIssuer, database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SearchQuery]:
    qm = SearchQuery(tmp_path_factory.mktemp("qm"), issuer, database)
    qm.process.start()
    yield qm
    qm.process.stop()


@pytest.fixture(scope="session")
def windowed_qm(
    issuer: TestIssuer, database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SearchQuery]:
    """A second query process on the same catalog that ranks only the 2 newest matches
    and counts exactly only up to 3."""
    qm = SearchQuery(
        tmp_path_factory.mktemp("qm-windowed"),
        issuer,
        database,
        QM_SEARCH_RANK_WINDOW="2",
        QM_SEARCH_COUNT_LIMIT="3",
    )
    qm.process.start()
    yield qm
    qm.process.stop()


def new_se_id() -> str:
    return f"se-q-{uuid.uuid4().hex[:10]}"


DEFAULT_ROW: dict[str, Any] = {
    "schema_version": 1,
    "content_type": "application/octet-stream",
    "size": 100,
    "status": "active",
    "retention_policy": "permanent",
    "ttl_days": None,
    "expires_at": None,
    "description": "",
    "tags": [],
    "metadata": {},
    "version": 1,
}


class Catalog:
    """Rows of one test: its own uploader name keeps its searches to its own rows."""

    __test__ = False

    def __init__(self, qm: SearchQuery) -> None:
        self.qm = qm
        self.owner = f"owner-{uuid.uuid4().hex[:10]}"
        self.se = new_se_id()
        self._clock = 0

    def put(self, filename: str = "file.bin", *, se: str | None = None, **fields: Any) -> str:
        """One copy; a new file unless ``file_id`` is given. Returns the file id."""
        from datetime import UTC, datetime, timedelta

        self._clock += 1
        at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=self._clock)
        row = {
            **DEFAULT_ROW,
            "file_id": str(uuid.uuid4()),
            "original_filename": filename,
            "uploaded_by": self.owner,
            "uploaded_at": at,
            "updated_at": at,
            **fields,
        }
        cols = [*row, "storage_element_id", "storage_path", "checksum", "meta_checksum"]
        values = [*row.values(), se or self.se, f"files/{row['file_id']}", "sha256:" + "0" * 64,
                  "sha256:" + "1" * 64]  # fmt: skip
        marks = ", ".join(f"${i + 1}" for i in range(len(cols)))
        query = f"INSERT INTO catalog.files ({', '.join(cols)}) VALUES ({marks})"  # noqa: S608
        values = [json_if_dict(v) for v in values]
        self.qm.sql(query, *values)
        return str(row["file_id"])

    def search(self, expect: int = 200, **body: Any) -> Any:
        body.setdefault("uploaded_by", self.owner)
        with self.qm.client() as c:
            r = c.post("/api/v1/search", json=body)
        assert r.status_code == expect, r.text
        return r.json()

    def ids(self, **body: Any) -> list[str]:
        return [i["file_id"] for i in self.search(**body)["items"]]


def json_if_dict(value: Any) -> Any:
    import json

    return json.dumps(value) if isinstance(value, dict) else value


@pytest.fixture
def catalog(search_qm: SearchQuery) -> Catalog:
    return Catalog(search_qm)
