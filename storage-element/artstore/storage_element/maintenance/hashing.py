"""Re-hashing a stored blob, optionally at a bounded rate (the scrubber)."""

from __future__ import annotations

import asyncio
import time

from artstore.storage_element import bitrot
from artstore.storage_element.attr.model import Attr
from artstore.storage_element.backends.base import Backend

CHUNK = 1024 * 1024


async def blob_digest(
    backend: Backend,
    storage_path: str,
    size: int,
    hasher: bitrot.Hasher,
    bytes_per_sec: int = 0,
) -> str:
    """The blob's hex digest by ``hasher``; with ``bytes_per_sec`` it sleeps to keep
    under that rate. Each chunk is read and hashed in one thread hop."""
    reader = await asyncio.to_thread(backend.open_reader, storage_path, 0, size)

    def step() -> int:
        chunk = reader.read(CHUNK)
        hasher.update(chunk)
        return len(chunk)

    try:
        started = time.monotonic()
        done = 0
        while n := await asyncio.to_thread(step):
            done += n
            if bytes_per_sec > 0:
                ahead = done / bytes_per_sec - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    finally:
        await asyncio.to_thread(reader.close)
    return hasher.hexdigest()


async def blob_matches(backend: Backend, path: str, attr: Attr, bytes_per_sec: int = 0) -> bool:
    """Whether the blob at ``path`` still has the bytes ``attr`` describes: checked with the attr's
    bit-rot hash when it has one (issue 19), else with SHA-256 against its checksum."""
    hasher, expected, _ = bitrot.verifier(attr)
    got = await blob_digest(backend, path, attr.size, hasher, bytes_per_sec)
    return got == expected
