"""A file being created: its body received (streamed into a backend writer, or whole in
memory for the group commit), then published: the commit point.

Publishing holds the file's id and path locks and the publish gate (shared), and
re-checks the mode under the gate, so a transition that has answered can never be
followed by this upload's commit. Publishing never overwrites: a taken name is a
``Collision`` and nothing of this write is left at the final names.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from artstore.common.errors import FileTooLarge
from artstore.storage_element import bitrot
from artstore.storage_element.backends.base import BlobWriter, SmallWrite
from artstore.storage_element.capacity import Reservation
from artstore.storage_element.files.index import entry_of
from artstore.storage_element.store.changes import UPLOAD
from artstore.storage_element.store.errors import Collision, NameTooLong, NoSpace

if TYPE_CHECKING:
    from artstore.storage_element.attr.model import Attr, BitrotRef
    from artstore.storage_element.store.filestore import FileStore

log = logging.getLogger("artstore.storage_element.store")

# Hashing this much on the event loop costs less than a hop to a worker thread.
_HASH_INLINE_BYTES = 64 * 1024


def storage_error(exc: OSError, **details: object) -> Exception:
    """The storage exception an OSError of a write stands for (itself when none)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace("the disk is full", details=dict(details) or None)
    if exc.errno == errno.ENAMETOOLONG:
        return NameTooLong("the storage name is too long for the file system")
    if exc.errno == errno.EEXIST:
        return Collision("a file of that name is already stored", details=dict(details) or None)
    return exc


class Creation:
    def __init__(
        self,
        store: FileStore,
        file_id: str,
        storage_path: str,
        txn: str,
        reservation: Reservation,
    ) -> None:
        self.store = store
        self.file_id = file_id
        self.storage_path = storage_path
        self.txn = txn
        self.reservation = reservation
        self.writer: BlobWriter | None = None
        self.data: bytes | None = None  # the whole body, when it goes with a group
        self.size = 0
        self.sha256 = ""
        # The bit-rot hash (issue 19), computed in the same pass as the SHA-256.
        self.bitrot: BitrotRef | None = None
        self._bitrot = bitrot.new_hasher()
        self.published = False
        # True once the backend may have put something of ours at the final names.
        self._placing = False

    # -- receive -------------------------------------------------------------------------
    async def receive(self, body: AsyncIterator[bytes]) -> None:
        st = self.store
        s = st.settings
        small_limit = s.group_commit_max_bytes if st.group is not None else 0
        capacity = st.capacity
        buf = bytearray()
        received = 0
        try:
            async for chunk in body:
                received += len(chunk)
                if received > s.max_file_size:
                    raise FileTooLarge(
                        f"file exceeds {s.max_file_size} bytes",
                        details={"max_file_size": s.max_file_size},
                    )
                if received > self.reservation.amount:
                    # Reserve a chunk ahead when there is room, else just what arrived.
                    need = received - self.reservation.amount
                    if not (
                        capacity.reserve(self.reservation, max(need, s.io_chunk_bytes))
                        or capacity.reserve(self.reservation, need)
                    ):
                        raise NoSpace(
                            "storage ran out of room during the upload",
                            details={"received_bytes": received},
                        )
                buf += chunk
                if self.writer is None:
                    if received <= small_limit:
                        continue  # may still be a small upload: keep it in memory
                    self.writer = await self._new_writer()
                if len(buf) >= s.io_chunk_bytes:
                    data, buf = bytes(buf), bytearray()
                    await asyncio.to_thread(self._write, data)
            self.size = received
            if self.writer is None and small_limit:
                data = bytes(buf)
                self.data = data
                self.sha256, self.bitrot = (
                    _hashes(data)
                    if len(data) <= _HASH_INLINE_BYTES
                    else await asyncio.to_thread(_hashes, data)
                )
                return
            if self.writer is None:
                self.writer = await self._new_writer()
            if buf:
                await asyncio.to_thread(self._write, bytes(buf))
            self.sha256 = await asyncio.to_thread(self.writer.finish)
            self.bitrot = bitrot.ref_of(self._bitrot)
            st.faults.point(UPLOAD.step("after_tmp_blob"))
        except OSError as exc:
            raise storage_error(exc, received_bytes=received) from exc

    def _write(self, data: bytes) -> None:
        """Blocking: one chunk to the writer (which hashes it with SHA-256) and into the
        bit-rot hash, in the same thread hop while the bytes are in memory."""
        assert self.writer is not None
        self._bitrot.update(data)
        self.writer.write(data)

    async def _new_writer(self) -> BlobWriter:
        st = self.store
        return await asyncio.to_thread(st.backend.new_writer, self.txn, self.storage_path)

    # -- publish (the commit point) ------------------------------------------------------
    async def publish(self, attr: Attr, encoded: bytes) -> None:
        st = self.store
        from artstore.storage_element.store.filestore import path_key

        async with (
            st.locks.hold(self.file_id),
            st.locks.hold(path_key(self.storage_path)),
            st.modes.admit(UPLOAD.operation),
        ):
            self._placing = True
            try:
                if self.data is not None:
                    assert st.group is not None
                    await st.group.publish(
                        SmallWrite(self.txn, self.storage_path, self.data, encoded)
                    )
                else:
                    assert self.writer is not None
                    await st.journal.durable(self.txn)
                    await asyncio.to_thread(
                        st.backend.publish,
                        self.writer,
                        encoded,
                        self.storage_path,
                        st.faults.point,
                    )
            except FileExistsError as exc:
                self._placing = False  # the names are someone else's: never undo them
                raise Collision(
                    f"file {self.file_id} already exists", details={"file_id": self.file_id}
                ) from exc
            except OSError as exc:
                raise storage_error(exc) from exc
            await st.journal.commit(self.txn, owes_catalog=st.catalog.enabled)
            self.published = True
            st.faults.point(UPLOAD.step("after_commit"))
            st.capacity.release(self.reservation)
            st.capacity.stored(self.size + len(encoded), files=1)
            st.index.put(self.storage_path, entry_of(attr))
        await st.catalog.record(self.txn, self.file_id, attr)
        st.faults.point(UPLOAD.step("after_catalog"))

    # -- undo ----------------------------------------------------------------------------
    async def undo(self) -> None:
        """Leave nothing of a failed create: the unpublished blob, and what reached the
        final names before the failure (e.g. the folder fsync failed). Never raises: the
        caller's error is the answer. When the final names could not be cleared, the
        journal entry stays open, so that recovery resolves it by the upload's rule."""
        journal = self.store.journal
        try:
            await asyncio.shield(asyncio.to_thread(self._undo_sync))
        except Exception:
            log.exception("undo of upload %s failed", self.file_id)
            if self._placing:
                return
        await journal.abort(self.txn)

    def _undo_sync(self) -> None:
        st = self.store
        if self.writer is not None:
            self.writer.discard()
        if self._placing and not self.published:
            st.backend.remove_attr(self.storage_path)
            st.backend.remove_blob(self.storage_path)


def _hashes(data: bytes) -> tuple[str, BitrotRef]:
    return hashlib.sha256(data).hexdigest(), bitrot.ref_of_bytes(data)
