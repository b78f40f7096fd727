"""Generated catalog rows for search tests and the search benchmark.

Rows are written straight into ``catalog.files`` with one ``INSERT ... SELECT`` over
``generate_series`` (a million rows take seconds, not an upload each), and
:func:`row` computes in Python what row ``i`` holds, so tests can work out the right
answer of a search independently of the SQL that answers it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

WORDS = ("report", "invoice", "photo", "contract", "notes", "scan", "budget", "design")
EXTS = ("pdf", "txt", "PNG", "docx", "csv", "jpg")
TYPES = {
    "pdf": "application/pdf",
    "txt": "text/plain",
    "PNG": "image/png",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "csv": "text/csv",
    "jpg": "image/jpeg",
}
DEPTS = ("sales", "legal", "research", "finance", "ops")
TOPICS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india")
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
STEP_SECONDS = 30
SIZE_MOD = 10_000_000
# Every REPLICA_EVERY-th file also has a second copy on ``<se>-b``.
REPLICA_EVERY = 10


def _arr(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]"


def insert_sql(se_id: str, count: int, start: int = 0) -> str:
    """SQL inserting files ``start .. start+count-1`` of ``se_id`` (and their replicas)."""
    exts = _arr(EXTS)
    types = _arr(tuple(TYPES[e] for e in EXTS))
    # Only constants of this module and integers are interpolated.
    return f"""
    INSERT INTO catalog.files (
        storage_element_id, file_id, schema_version, storage_path, original_filename,
        content_type, size, checksum, uploaded_by, uploaded_at, updated_at, version, status,
        retention_policy, ttl_days, expires_at, description, tags, metadata, meta_checksum)
    SELECT s.se, md5('{se_id}/' || g.i)::uuid, 1, 'files/x/' || g.i,
        ({_arr(WORDS)})[1 + g.i % 8] || '_' || g.i || '.' || ({exts})[1 + (g.i / 8) % 6],
        ({types})[1 + (g.i / 8) % 6],
        (g.i::bigint * 7919) % {SIZE_MOD},
        'sha256:' || md5(g.i::text) || md5(g.i::text),
        'user' || (g.i % 50),
        timestamptz '{EPOCH.isoformat()}' + g.i * interval '{STEP_SECONDS} seconds',
        timestamptz '{EPOCH.isoformat()}' + g.i * interval '{STEP_SECONDS} seconds'
            + s.lag * interval '1 second',
        1,
        CASE WHEN g.i % 20 = 0 THEN 'deleted' WHEN g.i % 20 = 1 THEN 'expired'
             ELSE 'active' END,
        CASE WHEN g.i % 3 = 0 THEN 'temporary' ELSE 'permanent' END,
        CASE WHEN g.i % 3 = 0 THEN 30 END,
        CASE WHEN g.i % 3 = 0 THEN timestamptz '{EPOCH.isoformat()}'
            + g.i * interval '{STEP_SECONDS} seconds' + interval '30 days' END,
        'about ' || ({_arr(TOPICS)})[1 + g.i % 9] || ' and '
            || ({_arr(TOPICS)})[1 + (g.i / 9) % 9],
        ARRAY['t' || (g.i % 10), 'g' || (g.i % 7)],
        jsonb_build_object('project', 'p' || (g.i % 100),
                           'dept', ({_arr(DEPTS)})[1 + g.i % 5]),
        'sha256:' || md5('m' || g.i)
    FROM generate_series({start}, {start + count - 1}) AS g(i)
    CROSS JOIN LATERAL (
        SELECT '{se_id}' AS se, 0 AS lag
        UNION ALL
        SELECT '{se_id}-b', -1 WHERE g.i % {REPLICA_EVERY} = 0
    ) AS s
    """  # noqa: S608


@dataclass(frozen=True)
class Row:
    i: int
    file_id: str
    original_filename: str
    extension: str
    content_type: str
    size: int
    uploaded_by: str
    uploaded_at: datetime
    status: str
    retention_policy: str
    description: str
    tags: tuple[str, str]
    metadata: dict[str, str]
    copies: int


def _md5_uuid(text: str) -> str:
    import hashlib

    return str(uuid.UUID(hashlib.md5(text.encode()).hexdigest()))  # noqa: S324 - an id, not a MAC


def row(se_id: str, i: int) -> Row:
    """What file ``i`` of ``se_id`` is (the newest copy: the one on ``se_id``)."""
    ext = EXTS[(i // 8) % 6]
    status = "deleted" if i % 20 == 0 else "expired" if i % 20 == 1 else "active"
    return Row(
        i=i,
        file_id=_md5_uuid(f"{se_id}/{i}"),
        original_filename=f"{WORDS[i % 8]}_{i}.{ext}",
        extension=ext.lower(),
        content_type=TYPES[ext],
        size=(i * 7919) % SIZE_MOD,
        uploaded_by=f"user{i % 50}",
        uploaded_at=EPOCH + timedelta(seconds=i * STEP_SECONDS),
        status=status,
        retention_policy="temporary" if i % 3 == 0 else "permanent",
        description=f"about {TOPICS[i % 9]} and {TOPICS[(i // 9) % 9]}",
        tags=(f"t{i % 10}", f"g{i % 7}"),
        metadata={"project": f"p{i % 100}", "dept": DEPTS[i % 5]},
        copies=2 if i % REPLICA_EVERY == 0 else 1,
    )


def rows(se_id: str, count: int) -> list[Row]:
    return [row(se_id, i) for i in range(count)]


def as_dict(r: Row) -> dict[str, Any]:
    return {k: getattr(r, k) for k in Row.__dataclass_fields__}
