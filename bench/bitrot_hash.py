"""Hash throughput for the bit-rot hash choice (issue 19): SHA-256 (hashlib), BLAKE3
(``blake3``, one thread) and xxHash3-128 (``xxhash``) on 1 MiB and 4 KiB buffers, one
core, in MB/s. Usage: ``python bench/bitrot_hash.py [seconds-per-cell]``. ``blake3`` is
no dependency (only xxhash was chosen): its row is printed when it is installed."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable

import xxhash

HASHES: dict[str, Callable[[bytes], str]] = {
    "sha256 (hashlib)": lambda b: hashlib.sha256(b).hexdigest(),
    "xxh3-128": lambda b: xxhash.xxh3_128_hexdigest(b),
}
try:
    import blake3

    HASHES["blake3 (1 thread)"] = lambda b: blake3.blake3(b).hexdigest()
except ImportError:
    pass
SIZES = {"1 MiB": 1 << 20, "4 KiB": 4 << 10}


def rate(fn: Callable[[bytes], str], buf: bytes, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(16):
            fn(buf)
        n += 16
    return n * len(buf) / elapsed / 1e6


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    print(f"| hash | {' | '.join(f'{k} MB/s' for k in SIZES)} | µs per 1 MiB |")
    print("|---|" + "--:|" * (len(SIZES) + 1))
    for name, fn in HASHES.items():
        cells = [rate(fn, os.urandom(size), seconds) for size in SIZES.values()]
        per_mib = (1 << 20) / (cells[0] * 1e6) * 1e6
        print(f"| {name} | {' | '.join(f'{c:,.0f}' for c in cells)} | {per_mib:,.0f} |")


if __name__ == "__main__":
    main()
