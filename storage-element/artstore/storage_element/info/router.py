"""``GET /api/v1/info``: who this SE is, its mode and its room. No token needed."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from artstore.common.app import VERSION
from artstore.storage_element.node import Node, StorageNode

router = APIRouter(prefix="/api/v1", tags=["info"])


class CapacityInfo(BaseModel):
    total_bytes: int
    used_bytes: int
    available_bytes: int
    file_count: int


class SEInfo(BaseModel):
    storage_id: str
    name: str
    mode: str
    status: str
    version: str
    backend: str
    allowed_operations: list[str]
    capacity: CapacityInfo


def node_status(node: StorageNode) -> str:
    if not node.recovered or node.maintenance.rebuild.state == "running":
        return "maintenance"
    if node.catalog.enabled and not node.catalog.reachable:
        return "degraded"
    return "online"


@router.get("/info", response_model=SEInfo)
async def info(node: Node) -> SEInfo:
    cap = node.capacity
    return SEInfo(
        storage_id=node.settings.id,
        name=node.settings.name,
        mode=node.modes.current,
        status=node_status(node),
        version=VERSION,
        backend=node.backend.name,
        allowed_operations=node.modes.allowed_operations(),
        capacity=CapacityInfo(
            total_bytes=cap.total_bytes(),
            used_bytes=cap.used_bytes,
            available_bytes=cap.available_bytes(),
            file_count=cap.file_count,
        ),
    )
