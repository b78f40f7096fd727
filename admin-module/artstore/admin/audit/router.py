"""``/api/v1/audit``: read and verify the audit log (audit:read)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from artstore.admin.audit import service
from artstore.admin.audit.repository import AuditFilters
from artstore.admin.audit.schemas import AuditEntry, VerifyResult
from artstore.admin.state import DbSession
from artstore.common.auth import Principal, RequireScope
from artstore.common.errors import ValidationFailed
from artstore.common.pagination import Page, Pagination

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

Auditor = Annotated[Principal, Depends(RequireScope("audit:read"))]


@router.get("", response_model=Page[AuditEntry])
async def list_entries(
    session: DbSession,
    _: Auditor,
    page: Pagination,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: Annotated[datetime | None, Query(description="inclusive")] = None,
    until: Annotated[datetime | None, Query(description="inclusive")] = None,
) -> Page[AuditEntry]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationFailed(f"{name} needs a time zone (RFC 3339)")
    filters = AuditFilters(actor, action, target_type, target_id, since, until)
    rows, total = await service.search(session, filters, page.limit, page.offset)
    return Page.of([AuditEntry.model_validate(r, from_attributes=True) for r in rows], total, page)


@router.get("/verify", response_model=VerifyResult)
async def verify(session: DbSession, _: Auditor) -> VerifyResult:
    verdict = await service.verify(session)
    return VerifyResult.model_validate(verdict, from_attributes=True)
