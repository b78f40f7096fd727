"""Downloads streamed from a storage element, trying the next copy on early failure.

A copy is given up (and the next one tried) only before any byte reached the caller:
connect errors, timeouts, 5xx, and 404/409/410 from that SE (catalog ahead of it, an
``ar`` mode, a tombstone the catalog has not seen yet). Every other answer, errors
included (401, 403, 416, 304), is the SE's and is passed through with its headers.
Once the body flows, a broken upstream ends the response short: the client sees an
incomplete transfer (Content-Length) rather than bytes from a different source.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Response
from fastapi.responses import StreamingResponse

from artstore.common.errors import FileGone, UpstreamUnavailable
from artstore.common.registry import StorageElementRef, StorageRegistry
from artstore.query.state import QueryState

log = logging.getLogger("artstore.query.download")

PASS_REQUEST = ("range", "if-none-match", "if-modified-since", "if-range", "if-match")
PASS_RESPONSE = (
    "content-type",
    "content-length",
    "content-range",
    "content-disposition",
    "etag",
    "last-modified",
    "accept-ranges",
    "cache-control",
    "www-authenticate",
)
SKIP_STATUSES = {404, 409, 410}
SERVED_BY = "X-ArtStore-Storage-Element"
_RANK = {"online": 0, "degraded": 1}


def ordered(copies: list[dict[str, Any]], registry: StorageRegistry) -> list[StorageElementRef]:
    """SEs holding a copy, online first, then degraded, then the rest (the registry may
    be a poll behind, so an "offline" SE is still worth a try when all else failed)."""
    refs = []
    for c in copies:
        ref = registry.get(c["storage_element_id"])
        if ref is not None:
            refs.append(ref)
    return sorted(refs, key=lambda r: 3 if r.mode == "ar" else _RANK.get(r.status, 2))


async def _relay(resp: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.aiter_raw():
            yield chunk
    finally:
        await resp.aclose()


def _answer(resp: httpx.Response, method: str, se: StorageElementRef) -> Response:
    headers = {k: v for k, v in resp.headers.items() if k.lower() in PASS_RESPONSE}
    headers[SERVED_BY] = se.storage_id
    if method == "HEAD" or resp.status_code == 304:
        # Response() keeps a Content-Length given in headers, so HEAD tells the size.
        return Response(status_code=resp.status_code, headers=headers)
    return StreamingResponse(_relay(resp), status_code=resp.status_code, headers=headers)


async def download(
    state: QueryState,
    file_id: str,
    copies: list[dict[str, Any]],
    method: str,
    request_headers: dict[str, str],
    token: str,
) -> Response:
    sent = {k: v for k, v in request_headers.items() if k.lower() in PASS_REQUEST}
    sent["Authorization"] = f"Bearer {token}"
    tried: list[dict[str, Any]] = []
    gone = False
    refs = ordered(copies, state.registry)
    known = {r.storage_id for r in refs}
    for c in copies:
        if c["storage_element_id"] not in known:
            tried.append({"storage_element_id": c["storage_element_id"], "error": "unknown SE"})
    for se in refs:
        url = f"{se.url}/api/v1/files/{file_id}/download"
        try:
            resp = await state.http.send(
                state.http.build_request(method, url, headers=sent), stream=True
            )
        except httpx.HTTPError as exc:
            reason = exc.__class__.__name__
            state.metrics.copy_failures.labels("unreachable").inc()
            tried.append({"storage_element_id": se.storage_id, "error": reason})
            log.warning("copy of %s on %s unreachable (%s); next copy", file_id, se.storage_id,
                        reason)  # fmt: skip
            continue
        if resp.status_code >= 500 or resp.status_code in SKIP_STATUSES:
            await resp.aclose()
            gone = gone or resp.status_code == 410
            state.metrics.copy_failures.labels(str(resp.status_code)).inc()
            tried.append({"storage_element_id": se.storage_id, "status": resp.status_code})
            log.warning("copy of %s on %s answered %s; next copy", file_id, se.storage_id,
                        resp.status_code)  # fmt: skip
            continue
        return _answer(resp, method, se)
    if gone:
        await state.cache.drop(file_id)
        raise FileGone(f"file {file_id} is gone", details={"file_id": file_id, "tried": tried})
    raise UpstreamUnavailable(
        "no copy of the file could be read", details={"file_id": file_id, "tried": tried}
    )
