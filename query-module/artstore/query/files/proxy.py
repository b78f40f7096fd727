"""Downloads streamed from a storage element, trying the next copy on early failure.

A copy is given up (and the next one tried) only before any byte reached the caller:
connect errors, timeouts, 5xx, and 404/409/410 from that SE (catalog ahead of it, an
``ar`` mode, a tombstone the catalog has not seen yet). Every other answer, errors
included (401, 403, 416, 304), is the SE's and is passed through with its headers.
Once the body flows, a broken upstream ends the response short: the client sees an
incomplete transfer (Content-Length) rather than bytes from a different source.

An SE with presigned downloads answers a GET with a 307 to a presigned S3 URL: with
``QM_PASS_DOWNLOAD_REDIRECTS`` (default) that redirect is the answer (the client fetches
the bytes from S3; nothing is proxied). Without it the SE is asked to stream
(``NO_REDIRECT_HEADER``) and its bytes are relayed as always.

SEs on ``http://`` are read with :mod:`artstore.common.lean_http` (the shared lean
keep-alive client) and relayed by :class:`RelayResponse`, one ASGI body message per piece
read from the socket; other URLs (``https://``) go through the shared httpx client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from fastapi import Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from artstore.common.asgi import until_disconnect
from artstore.common.errors import FileGone, UpstreamUnavailable
from artstore.common.lean_http import UpstreamResponse
from artstore.common.registry import StorageElementRef, StorageRegistry
from artstore.common.se_client import StorageElementClient, Unreachable, bearer
from artstore.common.se_tokens import ExchangeRefused
from artstore.contracts.se import NO_REDIRECT_HEADER
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
PASS_RESPONSE_RAW = frozenset(h.encode() for h in PASS_RESPONSE)
SKIP_STATUSES = {404, 409, 410}
SERVED_BY = "X-ArtStore-Storage-Element"
# The bearer token for one SE: bound to it alone by token exchange (architecture §10).
TokenFor = Callable[[StorageElementRef], Awaitable[str]]
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


class RelayResponse(Response):
    """The SE's answer relayed as it arrives: its status, the passed headers, then one
    ``http.response.body`` per piece the upstream socket gave (no iterator, no task
    group, no copies). A body still flowing watches for the caller going away (uvicorn
    drops what is sent after a disconnect without telling) and then drops the upstream
    connection, which stops the SE too. A broken upstream raises: the answer ends short."""

    def __init__(self, upstream: UpstreamResponse, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.upstream = upstream
        self.status_code = upstream.status_code
        self.raw_headers = raw_headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        up = self.upstream
        watcher: asyncio.Task[None] | None = None
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code,
                 "headers": self.raw_headers}
            )  # fmt: skip
            data, last = await up.next_chunk()
            while not last:
                if watcher is None:
                    watcher = asyncio.ensure_future(until_disconnect(receive))
                await send({"type": "http.response.body", "body": data, "more_body": True})
                if watcher.done():
                    return  # the caller is gone: drop the upstream connection
                data, last = await up.next_chunk()
            await send({"type": "http.response.body", "body": data, "more_body": False})
        finally:
            if watcher is not None:
                watcher.cancel()
            up.close()  # no-op once the answer was read to its end (then it is pooled)


def _redirect(location: str, etag: str | None, se: StorageElementRef) -> Response:
    """The SE's 307 to a presigned URL, for the client to follow (no bytes pass here).
    no-store: the URL expires, so the answer must not be kept; the SE's ETag (the
    file's SHA-256) goes along: S3's answer will carry its own."""
    headers = {"Location": location, "Cache-Control": "no-store", SERVED_BY: se.storage_id}
    if etag:
        headers["ETag"] = etag
    return Response(status_code=307, headers=headers)


def _lean_answer(resp: UpstreamResponse, method: str, se: StorageElementRef) -> Response:
    raw = [(k.lower(), v) for k, v in resp.raw_headers if k.lower() in PASS_RESPONSE_RAW]
    raw.append((SERVED_BY.lower().encode(), se.storage_id.encode()))
    if method == "HEAD" or resp.status_code == 304:
        resp.release()  # pooled only when the SE's answer is complete (304), else closed
        answer = Response(status_code=resp.status_code)
        answer.raw_headers = raw  # as sent, Content-Length included (HEAD tells the size)
        return answer
    return RelayResponse(resp, raw)


async def download(
    state: QueryState,
    file_id: str,
    copies: list[dict[str, Any]],
    method: str,
    request_headers: dict[str, str],
    token_for: TokenFor,
) -> Response:
    passed = {k: v for k, v in request_headers.items() if k.lower() in PASS_REQUEST}
    redirects = state.settings.pass_download_redirects
    if not redirects:
        passed[NO_REDIRECT_HEADER] = "1"
    tried: list[dict[str, Any]] = []
    gone = False
    refs = ordered(copies, state.registry)
    known = {r.storage_id for r in refs}
    for c in copies:
        if c["storage_element_id"] not in known:
            tried.append({"storage_element_id": c["storage_element_id"], "error": "unknown SE"})
    client = StorageElementClient(state.http, state.upstream)
    for se in refs:
        try:
            sent = {**passed, **bearer(await token_for(se))}
            opened = await client.open_download(se, file_id, method, sent)
        except (Unreachable, ExchangeRefused) as exc:
            reason = exc.reason if isinstance(exc, Unreachable) else exc.__class__.__name__
            state.metrics.copy_failures.labels("unreachable").inc()
            tried.append({"storage_element_id": se.storage_id, "error": reason})
            log.warning("copy of %s on %s unreachable (%s); next copy", file_id, se.storage_id,
                        reason)  # fmt: skip
            continue
        status = opened.status_code
        if status == 307 and redirects and (location := opened.header("location")):
            etag = opened.header("etag")
            await opened.aclose()
            return _redirect(location, etag, se)
        # A redirect we may not pass on (or one without a target) fails this copy.
        redirected = 300 <= status < 400 and status != 304
        if status >= 500 or status in SKIP_STATUSES or redirected:
            await opened.aclose()
            if status in SKIP_STATUSES:
                state.copy_reader.forget(file_id)  # the catalog's word was stale
            gone = gone or status == 410
            state.metrics.copy_failures.labels(str(status)).inc()
            tried.append({"storage_element_id": se.storage_id, "status": status})
            log.warning("copy of %s on %s answered %s; next copy", file_id, se.storage_id,
                        status)  # fmt: skip
            continue
        if opened.lean is not None:
            return _lean_answer(opened.lean, method, se)
        assert opened.resp is not None
        return _answer(opened.resp, method, se)
    if gone:
        await state.cache.drop(file_id)
        raise FileGone(f"file {file_id} is gone", details={"file_id": file_id, "tried": tried})
    raise UpstreamUnavailable(
        "no copy of the file could be read", details={"file_id": file_id, "tried": tried}
    )
