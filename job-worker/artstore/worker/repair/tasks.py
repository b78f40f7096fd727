"""The repair jobs (kinds in artstore.contracts.jobs; docs/repair.md)."""

from __future__ import annotations

import uuid
from typing import Any

from artstore.common.errors import ValidationFailed
from artstore.contracts.jobs import REPAIR_FILE, REPAIR_SCAN, SE_ID_MAX
from artstore.worker.context import JobContext
from artstore.worker.repair import service
from artstore.worker.tasks import job


@job(REPAIR_SCAN, queue=service.QUEUE)
async def repair_scan(ctx: JobContext) -> dict[str, Any]:
    return await service.scan(ctx)


# retry=1: a run whose worker died mid-copy is queued again once (tasks/lost.py); the
# next scan queues any file still short anyway.
@job(REPAIR_FILE, queue=service.QUEUE, retry=1)
async def repair_file(
    ctx: JobContext, *, file_id: str, prefer_storage_element_id: str | None = None
) -> dict[str, Any]:
    # Args come from the admin's API (retry, restore) too: checked like any input.
    try:
        file_id = str(uuid.UUID(file_id))
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValidationFailed("file_id must be a UUID", details={"file_id": "invalid"}) from exc
    if prefer_storage_element_id is not None and not (
        isinstance(prefer_storage_element_id, str)
        and 0 < len(prefer_storage_element_id) <= SE_ID_MAX
    ):
        raise ValidationFailed("prefer_storage_element_id must be a storage id")
    return await service.repair_file(ctx, file_id, prefer_storage_element_id)
