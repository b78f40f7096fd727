"""Power loss by snapshot (issue 12): while one SE keeps running its seeded workload,
powerfs writes the durable image at random moments (``PowerMount.snapshot``, between
two filesystem operations) and each image is recovered with the SE's own startup code
and held to the ledger window (``powerloss_image``). Hundreds of cuts cost seconds,
not a restart each; every case ends with one full cut (SE killed, disk rebuilt, SE
restarted, catalog == attrs), the part a snapshot cannot check.

``POWERLOSS_SNAPSHOTS`` sets the snapshot cuts over all cases (``make test-powerloss``
raises it); ``POWERLOSS_SEED`` replays a seed. A failure names the seed and the
snapshot, and keeps that image.
"""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from tests.conftest import SEFactory
from tests.storage_element.powerloss import Ledger, Worker, check, power_cut
from tests.storage_element.powerloss_image import check_image, discard, view
from tests.storage_element.powerloss_report import record
from tests.support.powerfs.mount import PowerMount
from tests.support.se import StorageElementUnderTest

pytestmark = pytest.mark.local_only

SNAPSHOTS = int(os.environ.get("POWERLOSS_SNAPSHOTS", "240"))
SEED = int(os.environ.get("POWERLOSS_SEED", "0")) or None
STREAMED = {"SE_GROUP_COMMIT_MAX_BYTES": "0"}
# scenario (the SE's mode and workload), write path, seed
# Many short runs of PER_RUN snapshots (four cases each) rather than long ones: a
# check's cost grows with the files stored.
PER_RUN = 30
CASES = [
    (scenario, path, 4100 + 10 * run + i)
    for run in range(max(1, SNAPSHOTS // (4 * PER_RUN)))
    for i, (scenario, path) in enumerate(
        [("edit", "grouped"), ("rw", "grouped"), ("edit", "streamed"), ("rw", "streamed")]
    )
]
# Small: every image copies all the data (the full cuts and the step cuts in
# test_power_loss.py upload the large sizes). The streamed cases stream every size.
SIZES = (0, 1, 700, 4096, 4096, 20_000, 70_000, 150_000)


def snapshot_run(
    se: StorageElementUnderTest,
    mount: PowerMount,
    ledger: Ledger,
    scenario: str,
    seed: int,
    count: int,
    sizes: tuple[int, ...],
) -> dict[str, int]:
    """``count`` snapshot cuts under a running workload, each checked; then the SE is
    killed (the workers end). Returns the counts."""
    rng = random.Random(seed)
    gate = threading.Event()
    gate.set()
    pool = [
        Worker(se, ledger, random.Random(rng.getrandbits(64)), scenario, sizes, gate=gate)
        for _ in range(3)
    ]
    threads = [threading.Thread(target=w.run, args=(1_000_000,)) for w in pool]
    for t in threads:
        t.start()
    totals = {"snapshot_cuts": 0, "torn_snapshots": 0, "snapshot_checked": 0}
    totals["snapshot_lost_entries"] = 0
    try:
        for i in range(count):
            with ledger.acked:  # a seeded number of acknowledgements, then a seeded pause
                target = ledger.acks + rng.randint(1, 4)
                ledger.acked.wait_for(
                    lambda t=target: ledger.acks >= t or any(w.done for w in pool),  # type: ignore[misc]
                    120,
                )
            time.sleep(rng.random() * 0.02)
            for w in pool:
                if w.error is not None:
                    raise AssertionError(f"POWERLOSS_SEED={seed}: a worker failed") from w.error
            torn = rng.random() < 0.25
            before = view(ledger)
            image, stats = mount.snapshot(f"s{i}", torn=torn)
            after = view(ledger)
            gate.clear()  # what is in flight finishes; nothing new while the image is checked
            try:
                totals["snapshot_checked"] += check_image(image, scenario, before, after)
            except AssertionError as exc:
                raise AssertionError(
                    f"snapshot {i}{' (torn)' if torn else ''} of POWERLOSS_SEED={seed}, "
                    f"image kept in {image}: {exc}"
                ) from exc
            gate.set()
            discard(image)
            totals["snapshot_cuts"] += 1
            totals["torn_snapshots"] += torn
            totals["snapshot_lost_entries"] += stats["lost_entries"]
    finally:
        gate.set()
        se.process.kill()
        for t in threads:
            t.join(60)
    for w in pool:
        if w.error is not None:
            raise AssertionError(f"POWERLOSS_SEED={seed}: a worker failed") from w.error
    return totals


@pytest.mark.parametrize(
    ("scenario", "path", "base_seed"), CASES, ids=[f"{s}-{p}-{n}" for s, p, n in CASES]
)
def test_snapshot_cuts_under_a_running_workload(
    power_se: SEFactory, mount: PowerMount, scenario: str, path: str, base_seed: int
) -> None:
    seed = SEED if SEED is not None else base_seed
    se = power_se(scenario, **(STREAMED if path == "streamed" else {}))
    ledger = Ledger(mode=scenario)
    count = max(1, SNAPSHOTS // len(CASES))
    totals = snapshot_run(se, mount, ledger, scenario, seed, count, SIZES)
    record(**totals)
    assert totals["snapshot_checked"] > totals["snapshot_cuts"]
    # The full cut at the end: what only a restart with its catalog shows.
    power_cut(se, mount)
    se.start()
    try:
        check(se, ledger)
    except AssertionError as exc:
        raise AssertionError(f"the final cut of POWERLOSS_SEED={seed}: {exc}") from exc
    record(full_checked=ledger.checked)


def test_snapshots_catch_the_build_without_the_publish_dir_fsync(
    power_se: SEFactory, mount: PowerMount
) -> None:
    """The deliberately broken build (SE_TEST_SKIP_PUBLISH_DIR_FSYNC) fails the snapshot
    checker: an acknowledged upload is missing from an image, or (when the SE's own
    reconcile sees it first) its blob is there without the attr whose publish was lost."""
    se = power_se("edit", SE_TEST_SKIP_PUBLISH_DIR_FSYNC="true")
    ledger = Ledger(mode="edit")
    with pytest.raises(AssertionError, match=r"acknowledged .*not in the image|orphaned_blob"):
        snapshot_run(se, mount, ledger, "edit", 4199, 30, SIZES)
