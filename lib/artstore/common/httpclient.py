"""httpx client factory: one place for timeouts, pooling and request-id propagation."""

from __future__ import annotations

import httpx

from artstore.common.logs import request_id_var


async def _add_request_id(request: httpx.Request) -> None:
    rid = request_id_var.get()
    if rid != "-" and "X-Request-ID" not in request.headers:
        request.headers["X-Request-ID"] = rid


def make_async_client(
    base_url: str = "",
    *,
    timeout: float = 10.0,
    connect_timeout: float = 3.0,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        event_hooks={"request": [_add_request_id]},
    )
