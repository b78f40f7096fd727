"""The preview jobs (docs/previews.md): ``preview.make`` on its own queue, never retried
(a refusal is final, recorded once); ``preview.scan`` by schedule; ``preview.backfill``
by hand (``artstore preview-backfill``)."""

from __future__ import annotations

import uuid
from typing import Any

from artstore.common.errors import ValidationFailed
from artstore.worker.context import JobContext
from artstore.worker.previews import service
from artstore.worker.tasks import job


@job(service.PREVIEW_MAKE, queue=service.QUEUE, retry=0)
async def preview_make(ctx: JobContext, *, file_id: str) -> dict[str, Any]:
    try:
        file_id = str(uuid.UUID(file_id))
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValidationFailed("file_id must be a UUID", details={"file_id": "invalid"}) from exc
    return await service.make(ctx, file_id)


@job(service.PREVIEW_SCAN, queue=service.SCAN_QUEUE)
async def preview_scan(ctx: JobContext) -> dict[str, Any]:
    return await service.scan(ctx)


@job(service.PREVIEW_BACKFILL, queue=service.SCAN_QUEUE)
async def preview_backfill(ctx: JobContext) -> dict[str, Any]:
    return await service.backfill(ctx)
