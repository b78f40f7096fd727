"""``/api/v1/jobs``: the history of background jobs (admin:read), cancel and retry
(admin:write, audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from artstore.admin.audit.service import Actor
from artstore.admin.jobs import service
from artstore.admin.jobs.schemas import JobRun
from artstore.admin.state import DbSession, State
from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import ValidationFailed
from artstore.common.pagination import MAX_INT64, Page, Pagination
from artstore.common.text import check_text
from artstore.contracts.jobs import KIND_MAX, SE_ID_MAX, JobState
from artstore.jobs.repository import RunFilters

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

Reader = Annotated[Principal, Depends(RequireScope("admin:read"))]
Writer = Annotated[Principal, Depends(RequireScope("admin:write"))]
JobId = Annotated[int, Path(ge=1, le=MAX_INT64, description="The run's id")]


@router.get("", response_model=Page[JobRun])
async def list_jobs(
    session: DbSession,
    _: Reader,
    page: Pagination,
    kind: Annotated[str | None, Query(min_length=1, max_length=KIND_MAX)] = None,
    state: JobState | None = None,
    storage_element_id: Annotated[str | None, Query(min_length=1, max_length=SE_ID_MAX)] = None,
    since: Annotated[datetime | None, Query(description="queued at or after (RFC 3339)")] = None,
    until: Annotated[datetime | None, Query(description="queued before (RFC 3339)")] = None,
) -> Page[JobRun]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationFailed(f"{name} needs a time zone (RFC 3339)")
    if since is not None and until is not None and until < since:
        raise ValidationFailed("until is before since")
    if kind is not None:
        check_text("kind", kind, max_bytes=KIND_MAX)
    if storage_element_id is not None:
        check_text("storage_element_id", storage_element_id, max_bytes=SE_ID_MAX)
    filters = RunFilters(kind, state, storage_element_id, since, until)
    rows, total = await service.search(session, filters, page)
    return Page.of([JobRun.of(r) for r in rows], total, page)


@router.get("/{job_id}", response_model=JobRun)
async def get_job(job_id: JobId, session: DbSession, _: Reader) -> JobRun:
    return JobRun.of(await service.get(session, job_id))


@router.post("/{job_id}/cancel", response_model=JobRun)
async def cancel_job(job_id: JobId, session: DbSession, state: State, principal: Writer) -> JobRun:
    row = await service.cancel(session, state.jobs_queue, Actor.of(principal), job_id)
    return JobRun.of(row)


@router.post("/{job_id}/retry", response_model=JobRun, status_code=201)
async def retry_job(job_id: JobId, session: DbSession, state: State, principal: Writer) -> JobRun:
    row = await service.retry(session, state.engine, state.jobs_queue, Actor.of(principal), job_id)
    return JobRun.of(row)
