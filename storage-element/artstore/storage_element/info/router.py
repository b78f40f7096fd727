"""``GET /api/v1/info``: who this SE is, its mode and its room. No token needed."""

from __future__ import annotations

from fastapi import APIRouter

from artstore.common.app import VERSION
from artstore.contracts.se import Capacity, SEInfo, SEStatus
from artstore.storage_element.state import Node, SEState

router = APIRouter(prefix="/api/v1", tags=["info"])


def node_status(node: SEState) -> SEStatus:
    if not node.recovered or node.maintenance.rebuild.state == "running":
        return "maintenance"
    if node.catalog.enabled and not node.catalog.reachable:
        return "degraded"
    return "online"


@router.get("/info", response_model=SEInfo)
async def info(node: Node) -> SEInfo:
    cap = node.capacity
    # Validated: the answer is the contract every caller parses (artstore.contracts.se).
    return SEInfo.model_validate(
        {
            "storage_id": node.settings.id,
            "name": node.settings.name,
            "mode": node.modes.current,
            "status": node_status(node),
            "version": VERSION,
            "backend": node.backend.name,
            "allowed_operations": node.modes.allowed_operations(),
            "capacity": Capacity(
                total_bytes=cap.total_bytes(),
                used_bytes=cap.used_bytes,
                available_bytes=cap.available_bytes(),
                file_count=cap.file_count,
            ),
        }
    )
