"""The upload's cheap "the attr surely fits" test never lets through an attr that does
not fit (it only skips the trial encode of the largest-size attr)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from artstore.storage_element.attr.model import ATTR_MAX_BYTES, Attr, BitrotRef
from artstore.storage_element.files import upload
from artstore.storage_element.files.fields import UploadFields

WIDEST = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def _attr(fields: UploadFields, filename: str, content_type: str, uploader: str) -> Attr:
    return Attr(
        file_id=str(uuid.uuid4()),
        storage_path="2026/12/31/23/" + "x" * 200,  # storage names are at most 200
        original_filename=filename,
        content_type=content_type,
        size=2**63 - 1,
        checksum="sha256:" + "0" * 64,
        uploaded_by=uploader,
        uploaded_at=WIDEST,
        updated_at=WIDEST,
        version=2**31,
        status="active",
        retention_policy="temporary",
        ttl_days=3650,
        expires_at=WIDEST,
        description=fields.description,
        tags=fields.tags,
        metadata=fields.metadata,
        bitrot=BitrotRef(alg="xxh3-128", hex="f" * 32),
    )


def test_the_fixed_part_is_bounded() -> None:
    empty = _attr(UploadFields(), "", "", "")
    assert len(empty.encode()) <= upload._ATTR_FIXED_BYTES


def test_surely_fits_is_never_wrong() -> None:
    rng = random.Random(7)
    alphabet = 'aZ09 "\\\n\t\x01é漢😀'

    def text(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    skipped = 0
    for _ in range(3000):
        fields = UploadFields(
            description=text(rng.randrange(0, 200)),
            tags=[text(rng.randrange(1, 20)) for _ in range(rng.randrange(0, 6))],
            metadata={text(rng.randrange(1, 10)): text(rng.randrange(0, 30)) for _ in range(3)},
        )
        name, ctype, user = text(rng.randrange(1, 60)), text(rng.randrange(0, 30)), text(8)
        if not upload._may_not_fit(fields, name, ctype, user):
            skipped += 1
            assert len(_attr(fields, name, ctype, user).encode()) <= ATTR_MAX_BYTES
    assert skipped > 100  # the cheap test does skip the common, small cases


def test_large_fields_are_checked() -> None:
    fields = UploadFields(description="d" * 3000)
    assert upload._may_not_fit(fields, "a.txt", "text/plain", "alice")


def test_seal_matches_sealed_and_encode() -> None:
    attr = _attr(UploadFields(description="x", tags=["t"], metadata={"k": "v"}), "a", "b", "c")
    sealed, raw = attr.seal()
    assert sealed == attr.sealed() and raw == attr.encode() == attr.sealed().encode()
