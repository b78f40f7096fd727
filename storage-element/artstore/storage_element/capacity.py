"""Space accounting: what is used, what in-flight uploads have reserved, what is left."""

from __future__ import annotations

import time
from dataclasses import dataclass

from artstore.storage_element.backends.local import LocalBackend


@dataclass
class Reservation:
    amount: int = 0


class Capacity:
    def __init__(self, backend: LocalBackend, max_capacity: int, reserve_bytes: int) -> None:
        self.backend = backend
        self.max_capacity = max_capacity
        self.reserve_bytes = reserve_bytes
        self.used_bytes = 0
        self.file_count = 0
        self.reserved = 0
        self._fs_cache: tuple[float, int, int] = (0.0, 0, 0)

    def _fs(self) -> tuple[int, int]:
        # statvfs is a cheap metadata call; caching it for a second keeps it off hot paths.
        at, total, free = self._fs_cache
        now = time.monotonic()
        if now - at > 1.0:
            total, free = self.backend.fs_usage()
            self._fs_cache = (now, total, free)
        return total, free

    def total_bytes(self) -> int:
        if self.max_capacity > 0:
            return self.max_capacity
        total, _ = self._fs()
        return max(0, total - self.reserve_bytes)

    def available_bytes(self) -> int:
        """Room for new data, net of in-flight reservations."""
        _, free = self._fs()
        room = free - self.reserve_bytes
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
        self._fs_cache = (0.0, 0, 0)
