"""tus 1.0 resumable uploads (placeholder, filled in below)."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/uploads", tags=["tus"])
