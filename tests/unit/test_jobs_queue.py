"""The job queue's pins and small rules (issue 15, docs/jobs.md)."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from procrastinate.schema import SchemaManager

from artstore.jobs.queue import PROCRASTINATE_VERSION, libpq_url
from artstore.worker.tasks import JOBS, job

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_procrastinate_is_the_one_migration_0008_applies() -> None:
    # An upgrade needs its own migration (docs/jobs.md, "Upgrading procrastinate").
    assert version("procrastinate") == PROCRASTINATE_VERSION
    vendored = ROOT / "migrations" / "sql" / f"procrastinate-{PROCRASTINATE_VERSION}.sql"
    assert vendored.read_text(encoding="utf-8") == SchemaManager.get_schema()
    assert vendored.name in (ROOT / "migrations" / "versions" / "0008_jobs.py").read_text()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+asyncpg://u:p@h:5432/db", "postgresql://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("host=h dbname=db", "host=h dbname=db"),
    ],
)
def test_libpq_url(url: str, expected: str) -> None:
    assert libpq_url(url) == expected


async def _noop(ctx: Any) -> dict[str, Any]:
    return {}


def test_job_kinds_are_checked_and_registered_once() -> None:
    with pytest.raises(ValueError, match=r"1\.\.64"):
        job("")
    with pytest.raises(ValueError, match=r"1\.\.64"):
        job("k" * 65)
    with pytest.raises(ValueError, match="retry"):
        job("unit.retry", retry=-1)
    try:
        assert job("unit.once", retry=2)(_noop) is _noop
        assert JOBS["unit.once"].retry == 2
        job("unit.once")(_noop)  # the same function again (a re-import) is fine

        async def other(ctx: Any) -> dict[str, Any]:
            return {}

        with pytest.raises(ValueError, match="registered twice"):
            job("unit.once")(other)
    finally:
        JOBS.pop("unit.once", None)
