"""Space accounting: what is used, what in-flight uploads have reserved, what is left."""

from __future__ import annotations

import time
from dataclasses import dataclass

from artstore.storage_element.backends.base import Backend


@dataclass
class Reservation:
    amount: int = 0


class Capacity:
    """Room = free space less ``SE_RESERVE_BYTES``, capped by ``SE_MAX_CAPACITY``.

    A backend without a filesystem (S3) has only ``SE_MAX_CAPACITY``.
    """

    def __init__(self, backend: Backend, max_capacity: int, reserve_bytes: int) -> None:
        self.backend = backend
        self.max_capacity = max_capacity
        self.reserve_bytes = reserve_bytes
        self.used_bytes = 0
        self.file_count = 0
        self.reserved = 0
        self._fs_at = 0.0
        self._fs_usage: tuple[int, int] | None = None

    def _fs(self) -> tuple[int, int] | None:
        # statvfs is a cheap metadata call; caching it for a second keeps it off hot paths.
        now = time.monotonic()
        if now - self._fs_at > 1.0:
            self._fs_usage = self.backend.fs_usage()
            self._fs_at = now
        return self._fs_usage

    def total_bytes(self) -> int:
        if self.max_capacity > 0:
            return self.max_capacity
        usage = self._fs()
        return max(0, usage[0] - self.reserve_bytes) if usage else 0

    def available_bytes(self) -> int:
        """Room for new data, net of in-flight reservations."""
        usage = self._fs()
        if usage is None:
            room = self.max_capacity - self.used_bytes
        else:
            room = usage[1] - self.reserve_bytes
            if self.max_capacity > 0:
                room = min(room, self.max_capacity - self.used_bytes)
        return max(0, room - self.reserved)

    def reserve(self, reservation: Reservation, amount: int) -> bool:
        if amount <= 0:
            return True
        if amount > self.available_bytes():
            return False
        reservation.amount += amount
        self.reserved += amount
        return True

    def release(self, reservation: Reservation) -> None:
        self.reserved -= reservation.amount
        reservation.amount = 0

    def stored(self, nbytes: int, files: int = 0) -> None:
        self.used_bytes += nbytes
        self.file_count += files
        self._fs_at = 0.0
