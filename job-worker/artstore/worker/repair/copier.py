"""One copy of a file streamed from one SE to another, verified end to end (docs/repair.md).

The source's download streams straight into the destination's upload (constant memory).
The destination is told the SHA-256 and the size up front and refuses other bytes (422,
nothing published); the worker hashes what passes through as well, and holds back the
last chunk until that hash matches, so a destination never even receives a whole body
that the worker could not verify. The destination's upload is an ordinary journaled
write: a copy cut off half way is rolled back there and never visible."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from artstore.common.errors import ChecksumMismatch, UpstreamUnavailable
from artstore.common.registry import StorageElementRef
from artstore.common.se_client import Auth, StorageElementClient
from artstore.contracts.copies import copy_params
from artstore.contracts.files import FileMetadata
from artstore.contracts.se import CHECKSUM_HEADER


class Throttle:
    """The bytes per second (0: no limit) and the concurrent copies of one worker
    process, shared by all its repairs."""

    def __init__(self, bytes_per_second: int, concurrency: int) -> None:
        self.rate = bytes_per_second
        self.slots = asyncio.Semaphore(concurrency)
        # When the next byte may go (monotonic): each chunk books len/rate seconds.
        self._next = 0.0

    async def take(self, n: int) -> None:
        if self.rate <= 0 or n <= 0:
            return
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + n / self.rate
        if start > now:
            await asyncio.sleep(start - now)


_throttles: dict[tuple[int, int, int], Throttle] = {}


def throttle(bytes_per_second: int, concurrency: int) -> Throttle:
    """The process's throttle (one per event loop and setting)."""
    key = (id(asyncio.get_running_loop()), bytes_per_second, concurrency)
    found = _throttles.get(key)
    if found is None:
        found = _throttles[key] = Throttle(bytes_per_second, concurrency)
    return found


class SourceFailed(UpstreamUnavailable):
    """The copy being read failed (unreachable, cut off, other bytes than its checksum):
    another source may do."""


class DestinationFailed(UpstreamUnavailable):
    """The SE being written refused or failed: another destination may do."""


@dataclass(frozen=True)
class Endpoint:
    se: StorageElementRef
    auth: Auth


def _upload_headers(meta: FileMetadata, auth: Auth) -> dict[str, str]:
    return {
        **auth,
        "Content-Type": meta.content_type or "application/octet-stream",
        CHECKSUM_HEADER: meta.checksum.removeprefix("sha256:"),
        "Content-Length": str(meta.size),
    }


async def copy_file(
    client: StorageElementClient,
    source: Endpoint,
    dest: Endpoint,
    meta: FileMetadata,
    pace: Throttle,
    counted: Callable[[int], None],
) -> FileMetadata:
    """Copy the file ``meta`` describes (as its source SE answered it) from ``source`` to
    ``dest`` under the same id and metadata; the destination's answer. ``counted`` is
    told every chunk's size as it goes."""
    expected = meta.checksum.removeprefix("sha256:")
    failure: list[BaseException] = []

    async def body() -> AsyncGenerator[bytes, None]:
        hasher = hashlib.sha256()
        size = 0
        held: bytes | None = None
        try:
            # The client asks the SE to stream (no redirect to presigned storage).
            stream = client.download(source.se, meta.file_id, source.auth)
            async with contextlib.AsyncExitStack() as stack:
                close = getattr(stream, "aclose", None)  # an async generator's
                if close is not None:
                    stack.push_async_callback(close)
                async for chunk in stream:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > meta.size:
                        raise ChecksumMismatch(
                            f"copy on {source.se.storage_id} is longer than {meta.size} bytes"
                        )
                    hasher.update(chunk)
                    await pace.take(len(chunk))
                    if held is not None:
                        counted(len(held))
                        yield held
                    held = chunk
            if size != meta.size or hasher.hexdigest() != expected:
                raise ChecksumMismatch(
                    f"copy on {source.se.storage_id} does not match its checksum",
                    details={"file_id": meta.file_id, "storage_element_id": source.se.storage_id},
                )
        except Exception as exc:
            failure.append(exc)
            raise
        if held is not None:
            counted(len(held))
            yield held

    params = copy_params(meta, meta.retention_policy)
    sent = body()
    try:
        stored = await client.upload(dest.se, params, _upload_headers(meta, dest.auth), sent)
    except Exception as exc:
        if failure:
            raise SourceFailed(
                f"reading the copy on {source.se.storage_id} failed: {failure[0]}",
                details={"storage_element_id": source.se.storage_id},
            ) from failure[0]
        raise DestinationFailed(
            f"{dest.se.storage_id} did not take the copy: {exc}",
            details={"storage_element_id": dest.se.storage_id},
        ) from exc
    finally:
        await sent.aclose()  # whatever the upload left unread: the download is closed too
    if stored.checksum != meta.checksum or stored.size != meta.size:
        # Cannot happen with an SE that checks the declared checksum; never count it.
        raise DestinationFailed(
            f"{dest.se.storage_id} stored other bytes than were sent",
            details={"storage_element_id": dest.se.storage_id},
        )
    return stored
