"""HTTP route of the finalize domain (architecture §7)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from artstore.common.auth import Principal, RequireScope
from artstore.ingester.finalize.service import finalize
from artstore.ingester.state import IngesterDep
from artstore.ingester.uploads.schemas import StoredFile

router = APIRouter(prefix="/api/v1/files", tags=["finalize"])

Writer = Annotated[Principal, Depends(RequireScope("files:write"))]


@router.post("/{file_id}/finalize", response_model=StoredFile)
async def finalize_file(file_id: uuid.UUID, ing: IngesterDep, principal: Writer) -> StoredFile:
    """Make a temporary file permanent: copy it to rw SE(s) under the same id, verify the
    checksum, then delete the temporary copy. Safe to repeat after any failure."""
    return await finalize(ing, principal, str(file_id))
