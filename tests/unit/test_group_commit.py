"""GroupPublisher: uploads queued while a group is being published form the next group;
each upload gets its own outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from artstore.storage_element.backends.base import FaultPoint, SmallWrite
from artstore.storage_element.files.group_commit import GroupPublisher


class GatedBackend:
    """Publishes in a worker thread, holding the first group until released."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.groups: list[list[str]] = []
        self.committed: list[str] = []
        self.fail = fail or set()
        self.release = threading.Event()
        self.entered = threading.Event()

    def stage_batch(self, items: Sequence[SmallWrite], fault: FaultPoint) -> list[OSError | None]:
        self.entered.set()
        self.release.wait(10)
        self.groups.append([it.txn for it in items])
        return [OSError(28, "No space left") if it.txn in self.fail else None for it in items]

    def commit_batch(
        self, items: Sequence[SmallWrite], errors: list[OSError | None], fault: FaultPoint
    ) -> list[OSError | None]:
        self.committed += [it.txn for it, e in zip(items, errors, strict=True) if e is None]
        return errors


def _item(txn: str) -> SmallWrite:
    return SmallWrite(txn, f"2026/11/22/05/{txn}", b"x", b"{}")


async def test_uploads_arriving_during_a_group_form_the_next_one() -> None:
    backend = GatedBackend()
    group = GroupPublisher(backend, lambda step: None)
    first = asyncio.ensure_future(group.publish(_item("a")))
    await asyncio.to_thread(backend.entered.wait, 10)  # "a" is being published alone
    rest = [asyncio.ensure_future(group.publish(_item(t))) for t in ("b", "c", "d")]
    await asyncio.sleep(0)
    backend.release.set()
    await asyncio.gather(first, *rest)
    assert backend.groups == [["a"], ["b", "c", "d"]]
    assert (group.groups, group.published) == (2, 4)


async def test_each_upload_gets_its_own_outcome() -> None:
    backend = GatedBackend(fail={"bad"})
    backend.release.set()
    group = GroupPublisher(backend, lambda step: None)
    results = await asyncio.gather(
        group.publish(_item("ok1")),
        group.publish(_item("bad")),
        group.publish(_item("ok2")),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], OSError) and results[1].errno == 28
    assert group.published == 2
    assert backend.committed == ["ok1", "ok2"]


async def test_an_upload_whose_intent_is_not_durable_is_never_made_visible() -> None:
    backend = GatedBackend()
    backend.release.set()

    async def durable(txn: str) -> None:
        if txn == "unlogged":
            raise OSError(5, "Input/output error")  # the journal's fsync failed

    group = GroupPublisher(backend, lambda step: None, durable)
    results = await asyncio.gather(
        group.publish(_item("logged")), group.publish(_item("unlogged")), return_exceptions=True
    )
    assert results[0] is None
    assert isinstance(results[1], OSError) and results[1].errno == 5
    assert backend.committed == ["logged"]


async def test_a_crashing_backend_fails_every_waiter() -> None:
    class Broken(GatedBackend):
        def stage_batch(
            self, items: Sequence[SmallWrite], fault: FaultPoint
        ) -> list[OSError | None]:
            raise RuntimeError("bug")

    group = GroupPublisher(Broken(), lambda step: None)
    with pytest.raises(RuntimeError):
        await asyncio.gather(group.publish(_item("a")), group.publish(_item("b")))
