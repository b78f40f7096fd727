"""``StorageElementClient``: every call another service makes to a storage element.

No other module builds an SE URL. Each method names the SE route it calls, sends the
Authorization the caller passes (a token bound to that SE alone by token exchange,
``artstore.common.se_tokens``) and turns the SE's answer into data or into our errors
(``se_client_errors``: 4xx/507 relayed, anything else 502, unreachable 502).

Bodies (uploads, downloads) go over the lean keep-alive client
(``artstore.common.lean_http``) when one is given and the SE is on plain ``http://``;
everything else goes through the service's httpx client. Either way bodies stream:
nothing holds a whole file.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from artstore.common.errors import ArtStoreError, NotFound, UpstreamUnavailable
from artstore.common.lean_http import UpstreamClient, UpstreamError, UpstreamResponse
from artstore.common.registry import StorageElementRef
from artstore.common.se_client_errors import Relayed, Unreachable, error_of
from artstore.contracts.files import FileMetadata
from artstore.contracts.quarantine import QuarantineItem, QuarantinePage
from artstore.contracts.se import NO_REDIRECT_HEADER, SEInfo

__all__ = ["Opened", "Relayed", "StorageElementClient", "Unreachable", "bearer"]

# What a transport failure looks like from either client (lean_http raises OSErrors).
_TRANSPORT = (httpx.HTTPError, httpx.InvalidURL, UpstreamError, OSError)

# An SE is named by its registry entry, or by its URL alone (before it is registered).
Target = StorageElementRef | str
Auth = Mapping[str, str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _base(se: Target) -> str:
    return (se.url if isinstance(se, StorageElementRef) else se).rstrip("/")


def _where(se: Target) -> tuple[str, dict[str, Any]]:
    if isinstance(se, StorageElementRef):
        return se.storage_id, {"storage_element_id": se.storage_id}
    return f"at {se}", {"url": se}


def unreachable(se: Target, exc: BaseException) -> Unreachable:
    where, details = _where(se)
    return Unreachable(where, details, type(exc).__name__)


def answer_error(se: Target, resp: httpx.Response) -> ArtStoreError:
    """The error for an httpx answer whose body was read."""
    where, details = _where(se)
    return error_of(
        where, details, resp.status_code, resp.content, resp.headers.get("www-authenticate")
    )


@dataclass
class Opened:
    """A download's answer, its body not read yet: exactly one of ``lean``/``resp``."""

    status_code: int
    lean: UpstreamResponse | None = None
    resp: httpx.Response | None = None

    def header(self, name: str) -> str | None:
        """One header of the answer (e.g. a presigned download's ``Location``)."""
        if self.lean is not None:
            value = self.lean.header(name.lower().encode())
            return None if value is None else value.decode("latin-1")
        return None if self.resp is None else self.resp.headers.get(name)

    async def aclose(self) -> None:
        if self.lean is not None:
            self.lean.close()
        if self.resp is not None:
            await self.resp.aclose()


async def _started(start: Callable[[], None], body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """httpx asks for the first chunk once the connection is open and the head sent."""
    start()
    async for chunk in body:
        yield chunk


class StorageElementClient:
    """Calls to SEs over ``http`` (and ``lean`` for bodies on plain ``http://`` SEs).
    Cheap to make: the connection pools belong to the clients passed in."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        lean: UpstreamClient | None = None,
        *,
        info_timeout: float | None = None,
    ) -> None:
        self.http = http
        self.lean = lean
        # /info answers at once (no body to wait for): a caller polling many SEs may
        # want a shorter limit than the client's own.
        self.info_timeout = info_timeout

    async def _call(
        self,
        se: Target,
        method: str,
        path: str,
        auth: Auth | None,
        *,
        ok: tuple[int, ...],
        **kw: Any,
    ) -> httpx.Response:
        """One request without a streamed answer; the answer when its status is in
        ``ok``, else the SE's error."""
        try:
            resp = await self.http.request(method, _base(se) + path, headers=auth, **kw)
        except _TRANSPORT as exc:
            raise unreachable(se, exc) from exc
        if resp.status_code not in ok:
            raise answer_error(se, resp)
        return resp

    @staticmethod
    def _json(se: Target, resp: httpx.Response) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError as exc:
            raise unreachable(se, exc) from exc
        if not isinstance(data, dict):
            raise unreachable(se, TypeError())
        return data

    @classmethod
    def _file(cls, se: Target, data: Any) -> FileMetadata:
        """A file's metadata as the SE answered it; another shape is not an SE's answer
        (UPSTREAM_UNAVAILABLE, like an unreadable body)."""
        try:
            return FileMetadata.model_validate(data)
        except ValueError as exc:
            raise unreachable(se, exc) from exc

    # -- who the SE is ------------------------------------------------------------------
    async def info_document(self, se: Target) -> dict[str, Any]:
        """``GET /api/v1/info`` as the SE sent it (the admin keeps and shows it); an
        answer without a storage id is not an SE's (UPSTREAM_UNAVAILABLE)."""
        kw: dict[str, Any] = {} if self.info_timeout is None else {"timeout": self.info_timeout}
        try:
            resp = await self._call(se, "GET", "/api/v1/info", None, ok=(200,), **kw)
        except ArtStoreError as exc:
            why = exc.reason if isinstance(exc, Unreachable) else exc.message
            raise UpstreamUnavailable(
                f"storage element {_where(se)[0]} did not answer /api/v1/info: {why}",
                details=_where(se)[1],
            ) from exc
        data = self._json(se, resp)
        sid = data.get("storage_id")
        if not isinstance(sid, str) or not 0 < len(sid) <= 200:
            raise UpstreamUnavailable(
                f"{_base(se)} is not a storage element", details=_where(se)[1]
            )
        return data

    async def info(self, se: Target) -> SEInfo:
        """``GET /api/v1/info``, typed."""
        data = await self.info_document(se)
        try:
            return SEInfo.model_validate(data)
        except ValueError as exc:
            raise UpstreamUnavailable(
                f"storage element {_where(se)[0]} answered /api/v1/info with a shape we "
                "do not know",
                details=_where(se)[1],
            ) from exc

    async def ready(self, se: Target) -> str | None:
        """``GET /health/ready``'s status (``ok``, ``degraded``, ``fail``); None when the
        SE did not say."""
        try:
            resp = await self.http.get(_base(se) + "/health/ready")
            status = resp.json().get("status")
        except (*_TRANSPORT, ValueError, AttributeError):
            return None
        return status if isinstance(status, str) else None

    # -- files ----------------------------------------------------------------------------
    async def get_file(self, se: Target, file_id: str, auth: Auth) -> FileMetadata | None:
        """``GET /api/v1/files/{id}``: the copy's metadata; None when the SE has none."""
        try:
            resp = await self._call(se, "GET", f"/api/v1/files/{file_id}", auth, ok=(200,))
        except Relayed as exc:
            if exc.status == 404:
                return None
            raise
        return self._file(se, self._json(se, resp))

    async def upload(
        self,
        se: Target,
        params: list[tuple[str, str]],
        headers: Auth,
        body: AsyncIterator[bytes],
        *,
        on_start: Callable[[], None] | None = None,
    ) -> FileMetadata:
        """``POST /api/v1/files`` (raw body, fields in the query): the stored copy's
        metadata. ``body`` is streamed; ``on_start`` is called once the connection is
        open and the head sent, just before the first chunk is pulled."""
        url = _base(se) + "/api/v1/files"
        start = on_start or (lambda: None)
        try:
            if self.lean is not None and self.lean.supports(url):
                answer = await self.lean.request(
                    "POST", url, dict(headers), params=params, body=body, on_start=start
                )
                content = await answer.read()
                status, auth_header = answer.status_code, answer.header(b"www-authenticate")
            else:
                resp = await self.http.post(
                    url, params=tuple(params), headers=headers, content=_started(start, body)
                )
                content, status = resp.content, resp.status_code
                found = resp.headers.get("www-authenticate")
                auth_header = found.encode() if found is not None else None
        except _TRANSPORT as exc:
            raise unreachable(se, exc) from exc
        if status != 201:
            where, details = _where(se)
            text = auth_header.decode("latin-1") if auth_header is not None else None
            raise error_of(where, details, status, content, text)
        try:
            data = json.loads(content)
        except ValueError as exc:
            raise unreachable(se, exc) from exc
        return self._file(se, data)

    async def patch_file(
        self, se: Target, file_id: str, auth: Auth, changes: Mapping[str, Any]
    ) -> FileMetadata:
        """``PATCH /api/v1/files/{id}`` (description, tags, metadata)."""
        resp = await self._call(
            se, "PATCH", f"/api/v1/files/{file_id}", auth, ok=(200,), json=dict(changes)
        )
        return self._file(se, self._json(se, resp))

    async def delete_file(
        self, se: Target, file_id: str, auth: Auth, *, accept: tuple[int, ...] = (204, 410)
    ) -> int:
        """``DELETE /api/v1/files/{id}`` (a tombstone); the status when in ``accept``
        (410: a tombstone already)."""
        resp = await self._call(se, "DELETE", f"/api/v1/files/{file_id}", auth, ok=accept)
        return resp.status_code

    async def download(
        self, se: Target, file_id: str, auth: Auth, *, extra: Auth | None = None
    ) -> AsyncIterator[bytes]:
        """``GET /api/v1/files/{id}/download`` as a stream (the request goes when the
        stream is first read); ``extra``: Range or conditional headers. The SE streams
        even with presigned downloads on (a service copying bytes wants them verified)."""
        url = f"{_base(se)}/api/v1/files/{file_id}/download"
        headers = {**auth, **(extra or {}), NO_REDIRECT_HEADER: "1"}
        try:
            async with self.http.stream("GET", url, headers=headers) as resp:
                if resp.status_code == 404:
                    raise NotFound(f"file {file_id} not found", details={"file_id": file_id})
                if resp.status_code not in (200, 206):
                    await resp.aread()
                    raise answer_error(se, resp)
                async for chunk in resp.aiter_raw():
                    yield chunk
        except _TRANSPORT as exc:
            raise unreachable(se, exc) from exc

    async def open_download(self, se: Target, file_id: str, method: str, headers: Auth) -> Opened:
        """``GET``/``HEAD /api/v1/files/{id}/download`` with the caller's Range and
        conditional headers: the answer with its body unread, whatever its status (the
        query module relays it). Raises :class:`Unreachable` only."""
        url = f"{_base(se)}/api/v1/files/{file_id}/download"
        try:
            if self.lean is not None and self.lean.supports(url):
                up = await self.lean.request(method, url, dict(headers))
                return Opened(up.status_code, lean=up)
            resp = await self.http.send(
                self.http.build_request(method, url, headers=headers), stream=True
            )
        except _TRANSPORT as exc:
            raise unreachable(se, exc) from exc
        return Opened(resp.status_code, resp=resp)

    # -- previews (issue 16, docs/previews.md "Storage on the SE") ------------------------
    async def put_preview(
        self,
        se: Target,
        file_id: str,
        size: int,
        data: bytes,
        content_type: str,
        auth: Auth,
    ) -> dict[str, Any]:
        """``PUT /api/v1/files/{id}/previews/{size}``: store (or replace) one preview
        (``image/webp`` or ``image/jpeg``). The SE's answer: ``file_id``, ``size``,
        ``format``, ``bytes``, ``sha256``."""
        resp = await self._call(
            se,
            "PUT",
            f"/api/v1/files/{file_id}/previews/{int(size)}",
            {**auth, "Content-Type": content_type},
            ok=(200, 201),
            content=data,
        )
        return self._json(se, resp)

    async def get_preview(
        self, se: Target, file_id: str, size: int, auth: Auth
    ) -> tuple[bytes, str, str] | None:
        """``GET /api/v1/files/{id}/previews/{size}``: (bytes, content type, ETag);
        None when the SE has no such preview (404 ``NO_PREVIEW``). A 404 for the file
        itself is relayed (NOT_FOUND)."""
        try:
            resp = await self._call(
                se, "GET", f"/api/v1/files/{file_id}/previews/{int(size)}", auth, ok=(200,)
            )
        except Relayed as exc:
            if exc.status == 404 and exc.code == "NO_PREVIEW":
                return None
            raise
        return (
            resp.content,
            resp.headers.get("content-type", "application/octet-stream"),
            resp.headers.get("etag", ""),
        )

    async def delete_preview(self, se: Target, file_id: str, size: int, auth: Auth) -> bool:
        """``DELETE /api/v1/files/{id}/previews/{size}``: True when one was removed,
        False when there was none (404 ``NO_PREVIEW``)."""
        try:
            await self._call(
                se, "DELETE", f"/api/v1/files/{file_id}/previews/{int(size)}", auth, ok=(204,)
            )
        except Relayed as exc:
            if exc.status == 404 and exc.code == "NO_PREVIEW":
                return False
            raise
        return True

    # -- upload sessions (the ingester's tus) -----------------------------------------------
    async def create_session(
        self, se: Target, body: Mapping[str, Any], auth: Auth
    ) -> dict[str, Any]:
        """``POST /api/v1/uploads``: the new session (``session_id``, ``expires_at``)."""
        resp = await self._call(se, "POST", "/api/v1/uploads", auth, ok=(201,), json=dict(body))
        return self._json(se, resp)

    async def session(self, se: Target, session_id: str, auth: Auth) -> dict[str, Any] | None:
        """``GET /api/v1/uploads/{id}``: offset, length, expiry; None when there is none."""
        try:
            resp = await self._call(se, "GET", f"/api/v1/uploads/{session_id}", auth, ok=(200,))
        except Relayed as exc:
            if exc.status == 404:
                return None
            raise
        return self._json(se, resp)

    async def append(
        self,
        se: Target,
        session_id: str,
        offset: int,
        headers: Auth,
        body: AsyncIterator[bytes],
    ) -> dict[str, Any]:
        """``PATCH /api/v1/uploads/{id}?offset=``: ``body`` streamed at ``offset``."""
        resp = await self._call(
            se,
            "PATCH",
            f"/api/v1/uploads/{session_id}",
            headers,
            ok=(200,),
            params={"offset": offset},
            content=body,
        )
        return self._json(se, resp)

    async def complete_session(self, se: Target, session_id: str, auth: Auth) -> FileMetadata:
        """``POST /api/v1/uploads/{id}/complete``: the stored file's metadata."""
        resp = await self._call(
            se, "POST", f"/api/v1/uploads/{session_id}/complete", auth, ok=(201,)
        )
        return self._file(se, self._json(se, resp))

    async def cancel_session(self, se: Target, session_id: str, auth: Auth) -> None:
        """``DELETE /api/v1/uploads/{id}``."""
        await self._call(se, "DELETE", f"/api/v1/uploads/{session_id}", auth, ok=(204,))

    # -- administration -----------------------------------------------------------------
    async def transition_mode(
        self, se: Target, body: Mapping[str, Any], auth: Auth
    ) -> dict[str, Any]:
        """``POST /api/v1/mode/transition``: the SE's answer (its mode now)."""
        resp = await self._call(
            se, "POST", "/api/v1/mode/transition", auth, ok=(200,), json=dict(body)
        )
        return self._json(se, resp)

    async def maintenance(
        self,
        se: Target,
        action: str,
        auth: Auth,
        *,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """``/api/v1/maintenance/{action}``: ``status`` (GET), ``reconcile``, ``gc``,
        ``rebuild-index`` (POST; the last answers 202 with its job)."""
        method = "GET" if action == "status" else "POST"
        resp = await self._call(
            se,
            method,
            f"/api/v1/maintenance/{action}",
            auth,
            ok=(200, 202),
            params=dict(params or {}),
        )
        return self._json(se, resp)

    # -- quarantine (architecture §5.5) ---------------------------------------------------
    async def quarantine(
        self, se: Target, auth: Auth, *, limit: int = 100, offset: int = 0
    ) -> QuarantinePage:
        """``GET /api/v1/maintenance/quarantine``: one page of the SE's quarantined items;
        another shape is not an SE's answer (UPSTREAM_UNAVAILABLE)."""
        resp = await self._call(
            se,
            "GET",
            "/api/v1/maintenance/quarantine",
            auth,
            ok=(200,),
            params={"limit": str(limit), "offset": str(offset)},
        )
        try:
            return QuarantinePage.model_validate(self._json(se, resp))
        except ValueError as exc:
            raise unreachable(se, exc) from exc

    async def quarantine_item(self, se: Target, item: str, auth: Auth) -> QuarantineItem:
        """``GET /api/v1/maintenance/quarantine/{item}``: one item (404 NOT_FOUND relayed)."""
        resp = await self._call(
            se, "GET", f"/api/v1/maintenance/quarantine/{quote(item, safe='')}", auth, ok=(200,)
        )
        try:
            return QuarantineItem.model_validate(self._json(se, resp))
        except ValueError as exc:
            raise unreachable(se, exc) from exc

    async def purge_quarantined(self, se: Target, item: str, auth: Auth) -> dict[str, Any]:
        """``DELETE /api/v1/maintenance/quarantine/{item}``: what the SE removed."""
        resp = await self._call(
            se,
            "DELETE",
            f"/api/v1/maintenance/quarantine/{quote(item, safe='')}",
            auth,
            ok=(200,),
        )
        return self._json(se, resp)
