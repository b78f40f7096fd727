"""Power loss, not just kill -9 (issue 12): the SE on a filesystem that forgets what was
never made durable (tests/support/powerfs), cut at random moments and at every named
fault step, restarted on exactly the durable state.

``POWERLOSS_CUTS`` sets the random cuts per scenario (``make test-powerloss`` raises
it); ``POWERLOSS_SEED`` replays one seed. A failure names its seed.
"""

from __future__ import annotations

import os
import random

import pytest

from artstore.storage_element.faults import ALL_STEPS, UPLOAD_STEPS
from artstore.storage_element.store.changes import CHANGES
from tests.conftest import SEFactory
from tests.storage_element.powerloss import Ledger, check, power_cut, run_cycle
from tests.storage_element.powerloss_report import record
from tests.support.powerfs.mount import PowerMount
from tests.support.se import StorageElementUnderTest

pytestmark = pytest.mark.local_only

CUTS = int(os.environ.get("POWERLOSS_CUTS", "3"))
SEED = int(os.environ.get("POWERLOSS_SEED", "0")) or None
SMALL = (0, 1, 700, 4096, 70_000, 300_000)  # all on the grouped path
STREAMED = {"SE_GROUP_COMMIT_MAX_BYTES": "0"}


def _seed(base: int) -> int:
    return SEED if SEED is not None else base


@pytest.mark.parametrize("scenario", ["edit", "rw"])
def test_power_cuts_at_random_moments(
    power_se: SEFactory, mount: PowerMount, scenario: str
) -> None:
    """Both write paths (grouped and streamed sizes mixed), PATCH, delete, GC, sessions,
    mode transitions; a cut after a seeded number of acknowledgements, CUTS times."""
    seed = _seed(1200 + (scenario == "rw"))
    rng = random.Random(seed)
    se = power_se(scenario)
    ledger = Ledger(mode=scenario)
    for cut in range(CUTS):
        try:
            run_cycle(se, ledger, rng, scenario, cut_after=rng.randint(1, 25))
            power_cut(se, mount)
            se.start()
            check(se, ledger)
        except AssertionError as exc:
            raise AssertionError(
                f"cut {cut} of seed {seed} (POWERLOSS_SEED={seed}): {exc}\n{se.process.log()}"
            ) from exc
    record(full_checked=ledger.checked)
    assert ledger.checked > 0


def _scenario(step: str) -> str:
    return "rw" if step.startswith("mode.") else "edit"


ALL_STEP_CASES = [(s, "grouped") for s in UPLOAD_STEPS] + [(s, "streamed") for s in ALL_STEPS]
# `make test` cuts at each kind's commit point (bounded time); POWERLOSS_ALL_STEPS=1
# (`make test-powerloss`) cuts at every step of every kind.
_EDGES = {kind.commit_point for kind in CHANGES.values()}
STEP_CASES = (
    ALL_STEP_CASES
    if os.environ.get("POWERLOSS_ALL_STEPS")
    else [(s, p) for s, p in ALL_STEP_CASES if s in _EDGES]
)


@pytest.mark.parametrize(("step", "path"), STEP_CASES, ids=[f"{s}-{p}" for s, p in STEP_CASES])
def test_power_cut_at_each_fault_step(
    power_se: SEFactory, mount: PowerMount, step: str, path: str
) -> None:
    """The SE dies at ``step`` (SE_CRASH_AT) and the power goes with it."""
    seed = _seed(7000 + ALL_STEP_CASES.index((step, path)))
    rng = random.Random(seed)
    scenario = _scenario(step)
    env = STREAMED if path == "streamed" else {}
    sizes = SMALL if path == "grouped" else (1, 5000, 300_000)
    se = power_se(scenario, SE_CRASH_AT=step, **env)
    ledger = Ledger(mode=scenario)
    try:
        run_cycle(se, ledger, rng, scenario, ops=400, sizes=sizes)
        power_cut(se, mount)
        se.start(SE_CRASH_AT="")
        check(se, ledger)
        record(full_checked=ledger.checked)
    except AssertionError as exc:
        raise AssertionError(f"{step} ({path}), POWERLOSS_SEED={seed}: {exc}") from exc


def _acknowledged_uploads_then_cut(
    se: StorageElementUnderTest,
    mount: PowerMount,
    ledger: Ledger,
    seed: int,
    sizes: tuple[int, ...],
) -> None:
    rng = random.Random(seed)
    run_cycle(
        se, ledger, rng, "edit", workers=2, ops=6, cut_after=10_000, sizes=sizes, only="upload"
    )
    assert sum(e.acked is not None for e in ledger.files.values()) == 12
    power_cut(se, mount)
    se.start()


@pytest.mark.parametrize("path", ["grouped", "streamed"])
def test_without_the_publish_dir_fsync_acknowledged_uploads_are_lost(
    power_se: SEFactory, mount: PowerMount, path: str
) -> None:
    """The deliberately broken build (SE_TEST_SKIP_PUBLISH_DIR_FSYNC): the suite fails,
    so the filesystem is shown to forget what was never made durable."""
    env = STREAMED if path == "streamed" else {}
    se = power_se("edit", SE_TEST_SKIP_PUBLISH_DIR_FSYNC="true", **env)
    ledger = Ledger(mode="edit")
    _acknowledged_uploads_then_cut(se, mount, ledger, 31, SMALL if path == "grouped" else (5000,))
    with pytest.raises(AssertionError):  # lost, or listed by the catalog but not on disk
        check(se, ledger)


def test_syncfs_never_reaches_a_fuse_filesystem(power_se: SEFactory, mount: PowerMount) -> None:
    """The finding: on FUSE ``syncfs`` returns 0 and flushes nothing on the server's
    side, so a group commit forced to ``syncfs`` loses acknowledged bytes there; the
    default (``auto``) fsyncs each file on FUSE and keeps them (the random cuts)."""
    se = power_se("edit", SE_GROUP_COMMIT_FLUSH="syncfs")
    ledger = Ledger(mode="edit")
    _acknowledged_uploads_then_cut(se, mount, ledger, 32, (700, 4096))
    with pytest.raises(AssertionError):
        check(se, ledger)
