"""The bit-rot hash (issue 19, docs/storage-element.md "Bit-rot hash").

SHA-256 stays the content checksum clients see; the attr also carries an xxHash3-128
of the blob (``Attr.bitrot``), computed in the same pass over the bytes at upload.
Whole-file downloads and the scrubber verify with it when the attr has one (tens of times
less CPU than SHA-256 per MiB here: docs/performance.md), else with SHA-256 as before.
It guards against the disk, not against an attacker: the attr's ``meta_checksum``
guards the attr itself, so an edited ``bitrot`` field makes the attr untrusted.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import xxhash

from artstore.storage_element.attr.model import Attr, BitrotRef

ALG = "xxh3-128"


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def new_hasher() -> Hasher:
    """A streaming bit-rot hasher (``ALG``)."""
    return xxhash.xxh3_128()


def ref_of(hasher: Hasher) -> BitrotRef:
    return BitrotRef(alg=ALG, hex=hasher.hexdigest())


def ref_of_bytes(data: bytes) -> BitrotRef:
    return BitrotRef(alg=ALG, hex=xxhash.xxh3_128_hexdigest(data))


def verifier(attr: Attr) -> tuple[Hasher, str, str]:
    """(a fresh hasher, the hex digest the blob must have, the hash's name): the bit-rot
    hash when the attr has one, else SHA-256 against the content checksum."""
    if attr.bitrot is not None:
        return new_hasher(), attr.bitrot.hex, attr.bitrot.alg
    return hashlib.sha256(), attr.checksum.removeprefix("sha256:"), "sha256"
