"""The copies policy and repair's decisions, without I/O (docs/repair.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from artstore.contracts.copies import wanted_copies
from artstore.worker.repair.policy import ATTR_MAX, Fleet, judge
from artstore.worker.repair.repository import CopyRow, SeRow

NOW = datetime(2026, 12, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("retention", "rw", "configured", "wanted"),
    [
        ("permanent", 0, 2, 1),  # no rw SE: the upload fails anyway; never 0
        ("permanent", 1, 2, 1),  # one rw SE: one copy, under-replicated
        ("permanent", 2, 2, 2),
        ("permanent", 5, 2, 2),
        ("permanent", 2, 3, 2),
        ("permanent", 3, 3, 3),
        ("permanent", 4, 1, 1),
        ("temporary", 5, 3, 1),
    ],
)
def test_wanted_copies(retention: str, rw: int, configured: int, wanted: int) -> None:
    assert wanted_copies(retention, rw, configured) == wanted


def se(
    sid: str, mode: str = "rw", status: str = "online", *, room: int = 10**9, lapsed: bool = False
) -> SeRow:
    return SeRow(sid, sid, f"http://{sid}", mode, status, "local", room, 0, room, 0, lapsed)


def copy(
    sid: str,
    *,
    checksum: str = "sha256:a",
    status: str = "active",
    quarantined: bool = False,
    age: int = 0,
) -> CopyRow:
    return CopyRow(
        sid, status, checksum, 100, "permanent", quarantined, NOW - timedelta(seconds=age), 1
    )


def test_healthy_copies_and_what_is_owed() -> None:
    fleet = Fleet.of(
        [se("a"), se("b"), se("c"), se("gone", status="offline", lapsed=True)], permanent_copies=2
    )
    assert fleet.counted == ["a", "b", "c"] and fleet.rw_online == 3
    plan = judge([copy("a"), copy("gone"), copy("b", quarantined=True)], fleet)
    assert [c.storage_element_id for c in plan.healthy] == ["a"]
    assert plan.wanted == 2 and plan.needed == 1
    # b's copy is quarantined: b may take the new copy; a and gone hold the id.
    assert plan.holders == {"a", "gone"}
    assert [d.storage_id for d in fleet.destinations("permanent", 100, plan.holders, "b")] == [
        "b",
        "c",
    ]
    # Other bytes than the speaking copy's do not count.
    other = judge([copy("a"), copy("b", checksum="sha256:b", age=5)], fleet)
    assert [c.storage_element_id for c in other.healthy] == ["a"]


def test_deleted_files_are_owed_nothing_and_offline_in_grace_still_counts() -> None:
    fleet = Fleet.of([se("a"), se("b", status="offline")], permanent_copies=2)
    assert judge([copy("a", status="deleted")], fleet).needed == 0
    plan = judge([copy("a"), copy("b")], fleet)
    assert len(plan.healthy) == 2 and plan.needed == 0
    # ...but an offline SE is no source, and one rw SE online caps the policy at 1.
    assert [c.storage_element_id for c in plan.sources(fleet)] == ["a"]
    assert plan.wanted == 1
    assert judge([copy("a", quarantined=True)], fleet).speaker is None


def test_destinations_need_the_mode_room_and_no_copy_there() -> None:
    fleet = Fleet.of(
        [
            se("small", room=100 + ATTR_MAX - 1),
            se("big", room=10**6),
            se("bigger", room=10**7),
            se("ro", mode="ro"),
            se("edit", mode="edit"),
            se("degraded", status="degraded"),
        ],
        permanent_copies=2,
    )
    assert [d.storage_id for d in fleet.destinations("permanent", 100, {"bigger"}, None)] == ["big"]
    assert [d.storage_id for d in fleet.destinations("permanent", 100, set(), None)] == [
        "bigger",
        "big",
    ]
    assert [d.storage_id for d in fleet.destinations("temporary", 100, set(), None)] == ["edit"]
