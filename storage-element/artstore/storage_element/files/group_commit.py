"""Group commit for small uploads: concurrent uploads share their durability flushes.

Each small upload waits here with its whole body in memory. The group takes everything
queued: a worker thread stages it (temp files, one flush of the filesystem) while the
journal makes the uploads' ``begin`` records durable, then a second call renames blob
and attr of each (the attr is the commit point) and fsyncs each hour folder once.
Uploads arriving meanwhile form the next group. Each file follows the single-file
protocol (architecture §5.3), only the flushes are shared, so recovery treats both alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from artstore.storage_element.backends.base import BatchPublisher, FaultPoint, SmallWrite

# Waits until a transaction's ``begin`` record is on stable storage (Journal.durable).
DurableWait = Callable[[str], Awaitable[None]]


async def _no_wait(txn: str) -> None:
    return None


class GroupPublisher:
    def __init__(
        self, backend: BatchPublisher, fault: FaultPoint, durable: DurableWait = _no_wait
    ) -> None:
        self.backend = backend
        self.fault = fault
        self.durable = durable
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
                errors = await self._publish(items)
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

    async def _publish(self, items: list[SmallWrite]) -> list[OSError | None]:
        staging = asyncio.ensure_future(
            asyncio.to_thread(self.backend.stage_batch, items, self.fault)
        )
        logged = await asyncio.gather(
            *(self.durable(it.txn) for it in items), return_exceptions=True
        )
        errors = await staging
        for i, outcome in enumerate(logged):
            if isinstance(outcome, BaseException) and errors[i] is None:
                # The intent is not on stable storage: this file must not become visible.
                errors[i] = outcome if isinstance(outcome, OSError) else OSError(str(outcome))
        return await asyncio.to_thread(self.backend.commit_batch, items, errors, self.fault)
