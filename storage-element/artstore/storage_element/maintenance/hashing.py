"""Re-hashing a stored blob, optionally at a bounded rate (the scrubber)."""

from __future__ import annotations

import asyncio
import hashlib
import time

from artstore.storage_element.backends.base import Backend

CHUNK = 1024 * 1024


async def blob_sha256(
    backend: Backend, storage_path: str, size: int, bytes_per_sec: int = 0
) -> str:
    """SHA-256 hex of the blob; with ``bytes_per_sec`` it sleeps to keep under that rate."""
    digest = hashlib.sha256()
    reader = await asyncio.to_thread(backend.open_reader, storage_path, 0, size)
    try:
        started = time.monotonic()
        done = 0
        while chunk := await asyncio.to_thread(reader.read, CHUNK):
            await asyncio.to_thread(digest.update, chunk)
            done += len(chunk)
            if bytes_per_sec > 0:
                ahead = done / bytes_per_sec - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    finally:
        await asyncio.to_thread(reader.close)
    return digest.hexdigest()
