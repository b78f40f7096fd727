"""The FileStore driven in-process on the in-memory backend: create (claims, collisions,
no-overwrite publish, reservations), replace, reclaim, quarantine, the publish gate, and
reconcile's re-check under the file lock."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from artstore.common.auth import Principal
from artstore.common.errors import ArtStoreError, ChecksumMismatch
from artstore.storage_element.attr.model import Attr
from artstore.storage_element.backends.memory import MemoryBackend, MemoryBlobWriter
from artstore.storage_element.faults import ALL_STEPS, UPLOAD_STEPS
from artstore.storage_element.files.fields import UploadFields
from artstore.storage_element.files.mutate import delete_file, update_file
from artstore.storage_element.files.schemas import FilePatch
from artstore.storage_element.files.upload import UploadRequest, store_upload
from artstore.storage_element.maintenance.reconcile import reconcile
from artstore.storage_element.settings import SESettings
from artstore.storage_element.state import SEState
from artstore.storage_element.store.changes import CHANGES, UPLOAD
from artstore.storage_element.store.errors import Collision, Deleted, ModeChanged, NoSpace
from artstore.storage_element.store.locks import PublishGate

GiB = 1024**3
PATH = "2026/01/02/03/same_alice_20260102T030405_00000000.bin"


def _node(tmp_path: Path, backend: MemoryBackend, mode: str = "edit", **kw: object) -> SEState:
    settings = SESettings.model_validate(
        {
            "id": "se-mem",
            "mode": mode,
            "data_dir": tmp_path,
            "max_capacity": 100 * GiB,
            "reserve_bytes": 0,
            **kw,
        }
    )
    node = SEState(settings, None, backend=backend)
    node.journal.open_new_segment()
    return node


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
async def node(tmp_path: Path, backend: MemoryBackend) -> AsyncIterator[SEState]:
    n = _node(tmp_path, backend)
    yield n
    await n.journal.close()


def _request(
    file_id: str | None = None, size: int | None = None, sha: str | None = None
) -> UploadRequest:
    fields = UploadFields()
    fields.filename = "a.bin"
    fields.file_id = file_id
    who = Principal(sub="alice", kind="user", name="alice", scopes=frozenset())
    return UploadRequest(who, fields, "application/octet-stream", size, sha)


async def _body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)  # let other requests interleave, as a network would
        yield chunk


async def _upload(node: SEState, data: bytes, file_id: str | None = None) -> Attr:
    return await store_upload(node, _request(file_id, len(data)), _body(data))


def _assert_nothing_held(node: SEState) -> None:
    assert node.capacity.reserved == 0
    assert node.store.claims == set()
    assert len(node.store.locks) == 0


# -- the change kinds' table -----------------------------------------------------------------
def test_fault_steps_come_from_the_change_kinds_table() -> None:
    assert tuple(s for k in CHANGES.values() for s in k.steps) == ALL_STEPS
    assert UPLOAD.steps == UPLOAD_STEPS
    done = [s for s in UPLOAD.steps if UPLOAD.done_at(s)]
    assert done[0] == UPLOAD.commit_point == "upload.after_attr_rename"
    with pytest.raises(KeyError):
        UPLOAD.step("after_nothing")


# -- create --------------------------------------------------------------------------------
async def test_create_publishes_and_counts(node: SEState, backend: MemoryBackend) -> None:
    attr = await _upload(node, b"hello")
    assert attr.checksum == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert backend.blobs[attr.storage_path] == b"hello"
    assert await node.store.find(attr.file_id) == attr
    assert (node.capacity.file_count, node.capacity.used_bytes) == (
        1,
        5 + len(backend.attrs[attr.storage_path]),
    )
    _assert_nothing_held(node)


async def test_concurrent_creates_of_one_id_exactly_one_wins(
    node: SEState, backend: MemoryBackend
) -> None:
    file_id = str(uuid.uuid4())
    bodies = [f"body {i}".encode() * (i + 1) for i in range(16)]
    results = await asyncio.gather(
        *(_upload(node, b, file_id) for b in bodies), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, Attr)]
    lost = [r for r in results if not isinstance(r, Attr)]
    assert len(won) == 1 and all(isinstance(r, Collision) for r in lost), results
    assert len(backend.attrs) == 1
    stored = await node.store.get(file_id)
    assert stored.checksum == won[0].checksum
    _assert_nothing_held(node)


async def test_publish_never_overwrites_a_taken_name(node: SEState, backend: MemoryBackend) -> None:
    async def create(data: bytes) -> None:
        fid = str(uuid.uuid4())
        async with node.store.create(fid, PATH, announced=len(data)) as c:
            await c.receive(_body(data))
            sha = f"sha256:{c.sha256}"
            now = datetime.now(UTC)
            attr, encoded = Attr(
                file_id=fid,
                storage_path=PATH,
                original_filename="same.bin",
                content_type="application/octet-stream",
                size=c.size,
                checksum=sha,
                uploaded_by="alice",
                uploaded_at=now,
                updated_at=now,
                version=1,
                status="active",
                retention_policy="temporary",
                ttl_days=1,
                expires_at=now,
                description="",
                tags=[],
                metadata={},
            ).seal()
            await c.publish(attr, encoded)

    await create(b"first")
    with pytest.raises(Collision) as caught:
        await create(b"second, same storage name")
    assert caught.value.status == 409
    assert backend.blobs == {PATH: b"first"}  # the first file is untouched
    assert backend.tmp == {}
    _assert_nothing_held(node)


async def test_a_failed_create_leaves_nothing(node: SEState, backend: MemoryBackend) -> None:
    with pytest.raises(ChecksumMismatch):
        await store_upload(node, _request(None, 3, "0" * 64), _body(b"abc"))
    assert backend.blobs == backend.attrs == backend.tmp == {}
    _assert_nothing_held(node)


class _UndoFails(MemoryBackend):
    """Its writers cannot be discarded: the undo of a failed upload raises."""

    def new_writer(self, txn: str, storage_path: str) -> MemoryBlobWriter:
        writer = super().new_writer(txn, storage_path)

        def discard() -> None:
            raise OSError(5, "Input/output error")

        writer.discard = discard  # type: ignore[method-assign]
        return writer


async def test_reservation_and_claim_released_when_the_undo_raises(tmp_path: Path) -> None:
    node = _node(tmp_path, _UndoFails(), group_commit_max_bytes=0)
    before = node.capacity.available_bytes()

    async def hang_up() -> AsyncIterator[bytes]:
        yield b"a few bytes"
        raise ConnectionResetError("client hung up")

    file_id = str(uuid.uuid4())
    for _ in range(5):
        with pytest.raises(ConnectionResetError):
            await store_upload(node, _request(file_id, 10 * GiB), hang_up())
        _assert_nothing_held(node)
    assert node.capacity.available_bytes() == before
    assert (await _upload(node, b"after", file_id)).file_id == file_id
    await node.journal.close()


async def test_no_room_for_the_announced_size(node: SEState) -> None:
    with pytest.raises(NoSpace) as caught:
        async with node.store.create(str(uuid.uuid4()), PATH, announced=200 * GiB):
            pytest.fail("created beyond the capacity")
    assert caught.value.status == 507
    _assert_nothing_held(node)


# -- replace, reclaim, quarantine ---------------------------------------------------------------
async def test_replace_writes_new_versions_until_deleted(node: SEState) -> None:
    attr = await _upload(node, b"data")
    updated = await update_file(node, attr.file_id, FilePatch(description="v2"))
    assert (updated.version, updated.description) == (2, "v2")
    gone = await delete_file(node, attr.file_id)
    assert (gone.version, gone.status) == (3, "deleted")
    with pytest.raises(Deleted) as caught:
        await update_file(node, attr.file_id, FilePatch(description="v4"))
    assert caught.value.status == 410
    _assert_nothing_held(node)


async def test_reclaim_keeps_a_copy_that_changed_since_it_was_judged(
    node: SEState, backend: MemoryBackend
) -> None:
    attr = await _upload(node, b"data")
    await delete_file(node, attr.file_id)
    kept = await node.store.reclaim(attr.file_id, attr.storage_path, lambda a: False)
    assert kept is None and attr.storage_path in backend.attrs
    freed = await node.store.reclaim(
        attr.file_id, attr.storage_path, lambda a: a.status == "deleted"
    )
    assert freed is not None and freed > 4
    assert backend.blobs == backend.attrs == {}
    assert (node.capacity.file_count, node.capacity.used_bytes) == (0, 0)


async def test_quarantine_rechecks_under_the_lock(node: SEState, backend: MemoryBackend) -> None:
    attr = await _upload(node, b"data")

    async def fine() -> bool:
        return False

    async def bad() -> bool:
        return True

    assert await node.store.quarantine(attr.storage_path, attr.file_id, "x", fine) is None
    assert attr.storage_path in backend.attrs
    moved = await node.store.quarantine(attr.storage_path, attr.file_id, "x", bad)
    assert moved is not None and moved.file_id == attr.file_id
    assert backend.attrs == {} and len(backend.quarantined) == 2
    assert await node.store.find(attr.file_id) is None


# -- reconcile vs an upload landing after its walk (issue 11, item 7) ------------------------
class _StaleWalk(MemoryBackend):
    """Lists what was there before an upload landed: its attr, not yet its blob."""

    stale: list[tuple[str, int]] | None = None

    def walk(self) -> Iterator[tuple[str, int]]:
        if self.stale is not None:
            yield from self.stale
            return
        yield from super().walk()


async def test_reconcile_keeps_an_upload_that_landed_after_its_walk(tmp_path: Path) -> None:
    backend = _StaleWalk()
    node = _node(tmp_path, backend, orphan_grace=0)
    attr = await _upload(node, b"landed")
    other = await _upload(node, b"also landed")
    backend.stale = [
        (attr.storage_path + ".attr.json", 10),  # the blob was not listed yet
        (other.storage_path, 1),  # a blob listed before its attr: wrong size, then
        (other.storage_path + ".attr.json", 10),
    ]
    report = await reconcile(node)
    assert report["issues"] == []
    assert backend.quarantined == {}
    assert await node.store.find(attr.file_id) == attr
    assert await node.store.find(other.file_id) == other
    await node.journal.close()


# -- mode transitions drain (issue 11, item 6) -------------------------------------------------
async def test_a_create_admitted_before_a_transition_is_undone(
    tmp_path: Path, backend: MemoryBackend
) -> None:
    node = _node(tmp_path, backend, mode="rw")
    node.modes.load("rw")
    more = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"first half "
        await more.wait()
        yield b"second half"

    upload = asyncio.ensure_future(store_upload(node, _request(None, 22), slow()))
    while node.capacity.reserved == 0:  # admitted: its announced size is reserved
        await asyncio.sleep(0)
    await node.modes.transition("ro", confirm=False)
    more.set()
    with pytest.raises(ModeChanged) as caught:
        await upload
    assert (caught.value.status, caught.value.code) == (409, "MODE_NOT_ALLOWED")
    assert backend.blobs == backend.attrs == backend.tmp == {}
    _assert_nothing_held(node)
    await node.journal.close()


async def test_a_transition_waits_for_writes_at_their_commit_point() -> None:
    gate = PublishGate()
    order: list[str] = []
    release = asyncio.Event()

    async def writer(name: str) -> None:
        async with gate.shared():
            order.append(f"{name} in")
            await release.wait()

    async def transition() -> None:
        async with gate.exclusive():
            order.append("transition")

    first = asyncio.ensure_future(writer("w1"))
    while not order:
        await asyncio.sleep(0)
    switch = asyncio.ensure_future(transition())
    late = asyncio.ensure_future(writer("w2"))  # arrives while the transition waits
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["w1 in"] and not switch.done()
    release.set()
    await asyncio.gather(first, switch, late)
    assert order == ["w1 in", "transition", "w2 in"]


def test_storage_errors_are_common_errors() -> None:
    for cls in (Collision, Deleted, ModeChanged, NoSpace):
        assert issubclass(cls, ArtStoreError)
