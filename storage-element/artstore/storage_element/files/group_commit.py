"""Group commit for small uploads: concurrent uploads share their durability flushes.

Each small upload waits here with its whole body in memory. One worker-thread call
publishes everything queued (``BatchPublisher.publish_batch``: temp files, one flush of
the filesystem, renames, one fsync per hour folder); uploads arriving meanwhile form the
next group. The protocol of each file is the single-file one (DESIGN §5.3), only the
flushes are shared, so recovery treats both alike.
"""

from __future__ import annotations

import asyncio

from artstore.storage_element.backends.base import BatchPublisher, FaultPoint, SmallWrite


class GroupPublisher:
    def __init__(self, backend: BatchPublisher, fault: FaultPoint) -> None:
        self.backend = backend
        self.fault = fault
        self._queue: list[tuple[SmallWrite, asyncio.Future[None]]] = []
        self._worker: asyncio.Task[None] | None = None
        self.groups = 0
        self.published = 0

    async def publish(self, item: SmallWrite) -> None:
        """Return once ``item`` is published durably; raise its OSError if it failed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.append((item, fut))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            # The group still touches this file: let it finish before the caller undoes.
            await asyncio.wait([fut])
            raise

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue, []
            items = [item for item, _ in group]
            try:
                errors = await asyncio.to_thread(self.backend.publish_batch, items, self.fault)
            except OSError as exc:
                errors = [exc] * len(group)
            except BaseException as exc:  # a bug or cancellation: nobody may wait forever
                for _, fut in group:
                    if not fut.done():
                        fut.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue  # the waiters carry the error; the next group may still work
            self.groups += 1
            for (_, fut), err in zip(group, errors, strict=True):
                if fut.done():
                    continue
                if err is None:
                    self.published += 1
                    fut.set_result(None)
                else:
                    fut.set_exception(err)
