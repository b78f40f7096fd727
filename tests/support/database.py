"""The test PostgreSQL: TEST_DATABASE_URL when set, else an embedded server."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from artstore.cli.devdb import (
    create_database,
    drop_database,
    embedded_server_url,
    with_database,
)
from artstore.cli.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]


def server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url:
        return url
    return embedded_server_url(ROOT / ".artstore" / "test-postgres" / "data")


class TestDatabase:
    """A fresh, migrated database for one test session (or one xdist worker)."""

    __test__ = False

    def __init__(self, worker: str) -> None:
        self.admin_url = server_url()
        self.name = f"artstore_test_{worker}_{uuid.uuid4().hex[:6]}"
        create_database(self.admin_url, self.name, drop_first=True)
        self.url = with_database(self.admin_url, self.name)
        upgrade(self.url)

    def drop(self) -> None:
        drop_database(self.admin_url, self.name)
