"""Fixtures of the power-loss suite (issue 12): a powerfs mount and SEs on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SEFactory
from tests.storage_element.powerloss_report import record
from tests.support.database import TestDatabase
from tests.support.issuer import TestIssuer
from tests.support.powerfs.mount import PowerMount
from tests.support.se import StorageElementUnderTest


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[PowerMount]:
    m = PowerMount(tmp_path / "powerfs").mount()
    yield m
    m.close()
    record(cuts=m.cuts, **m.totals)


@pytest.fixture
def power_se(
    tmp_path: Path, mount: PowerMount, issuer: TestIssuer, database: TestDatabase
) -> Iterator[SEFactory]:
    made: list[StorageElementUnderTest] = []

    def make(mode: str = "edit", start: bool = True, **env: str) -> StorageElementUnderTest:
        se = StorageElementUnderTest(
            tmp_path / "se",  # its log stays off the mount
            issuer,
            database.url,
            mode,
            {
                "SE_DATA_DIR": str(mount.mountpoint / "data"),
                "SE_ALLOW_CLOCK_OVERRIDE": "true",
                "SE_RECLAIM_AGE": "3600",
                "SE_GC_INTERVAL": "0",
                "SE_RECONCILE_INTERVAL": "0",
                "SE_SCRUB_BYTES_PER_SEC": "0",
                **env,
            },
        )
        se.data_dir = mount.mountpoint / "data"
        made.append(se)
        return se.start() if start else se

    yield make
    for se in made:
        se.process.kill()
