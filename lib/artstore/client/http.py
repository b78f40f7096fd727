"""Sending one request: auth header, token refresh on 401, retries, error decoding.

An API operation is described once as a :class:`Call` (see ``api.py``); the sync and
the async transport run the same description, so both clients behave alike.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from artstore.client.config import ClientConfig
from artstore.client.errors import (
    ArtStoreClientError,
    AuthenticationError,
    NotLoggedInError,
    ServiceConnectionError,
    error_from_response,
)
from artstore.client.models import TokenSet

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path
EXPIRY_SKEW = 30.0  # renew this many seconds before `exp`, so a request does not race it


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request to a service and how to read its answer.

    ``service`` is ``admin``, ``ingester`` or ``query`` (its URL comes from the
    config) unless ``base_url`` names another one (an SE, for maintenance).
    ``body`` is a factory so a retry can send the body again from the start.
    """

    method: str
    service: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Any = None
    json: Any = None
    data: Mapping[str, str] | None = None
    body: Callable[[], Iterable[bytes] | bytes] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    base_url: str | None = None
    auth: bool = True
    idempotent: bool | None = None
    timeout: float | None = None

    @property
    def retry_on_503(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        # PUT is idempotent in HTTP but our upload PUT creates a new file each time.
        return self.method in ("GET", "HEAD", "OPTIONS", "DELETE")


def token_expiry(token: str) -> float | None:
    """``exp`` of a JWT, read without verifying (the services verify; this only avoids
    sending a token that is already stale)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, int | float) else None
    except (IndexError, ValueError, TypeError):
        return None


class TokenKeeper:
    """The current access token and the means to renew it.

    Renewal uses the refresh token (password-grant sessions; the admin rotates it on
    every use, so the new one must be kept) or the client credentials (service
    accounts). ``on_tokens`` is called with every new token set, e.g. to persist it.
    """

    def __init__(
        self, config: ClientConfig, on_tokens: Callable[[TokenSet], None] | None = None
    ) -> None:
        self.access_token = config.token
        self.refresh_token = config.refresh_token
        self.client_id = config.client_id
        self.client_secret = config.client_secret
        self.on_tokens = on_tokens

    @property
    def can_renew(self) -> bool:
        return bool(self.refresh_token or (self.client_id and self.client_secret))

    def stale(self) -> bool:
        if not self.access_token:
            return True
        exp = token_expiry(self.access_token)
        return exp is not None and exp - EXPIRY_SKEW < time.time()

    def grant(self) -> dict[str, str]:
        if self.refresh_token:
            return {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        assert self.client_id and self.client_secret
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    def apply(self, tokens: TokenSet) -> None:
        self.access_token = tokens.access_token
        if tokens.refresh_token:
            self.refresh_token = tokens.refresh_token
        if self.on_tokens is not None:
            self.on_tokens(tokens)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


def _connection_error(
    call: Call[Any], url: str, exc: httpx.TransportError
) -> ServiceConnectionError:
    what = {
        httpx.ConnectError: "connection refused or host unreachable",
        httpx.ConnectTimeout: "connect timed out",
        httpx.ReadTimeout: "no answer in time",
        httpx.WriteTimeout: "sending timed out",
        httpx.PoolTimeout: "no free connection in time",
    }.get(type(exc)) or (str(exc) or type(exc).__name__)
    base = url.split("/api/", 1)[0]
    return ServiceConnectionError(f"cannot reach the {call.service} service at {base}: {what}")


def _retryable_transport(call: Call[Any], exc: httpx.TransportError) -> bool:
    # Nothing reached the server when the connection could not be made, so even a
    # non-idempotent request is safe to send again.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return True
    return call.retry_on_503


class _Base:
    def __init__(self, config: ClientConfig, keeper: TokenKeeper) -> None:
        self.config = config
        self.keeper = keeper

    def _url(self, call: Call[Any]) -> str:
        return (call.base_url or self.config.base_url(call.service)).rstrip("/") + call.path

    def _headers(self, call: Call[Any]) -> dict[str, str]:
        headers = {"User-Agent": self.config.user_agent, **call.headers}
        headers.setdefault("Accept", "application/json")
        if call.auth:
            if not self.keeper.access_token:
                raise NotLoggedInError("not logged in: no access token")
            headers["Authorization"] = f"Bearer {self.keeper.access_token}"
        return headers

    def _timeout(self, call: Call[Any]) -> httpx.Timeout:
        return httpx.Timeout(
            call.timeout or self.config.timeout, connect=self.config.connect_timeout
        )

    def _token_call(self) -> tuple[str, dict[str, str]]:
        return self.config.admin_url + TOKEN_PATH, self.keeper.grant()

    @staticmethod
    def _renewal_failed(exc: ArtStoreClientError) -> AuthenticationError:
        return AuthenticationError(
            f"session expired and could not be renewed ({exc.message}); log in again",
            code=exc.code,
            status=exc.status,
        )


class SyncTransport(_Base):
    def __init__(
        self, config: ClientConfig, keeper: TokenKeeper, http: httpx.Client | None = None
    ) -> None:
        super().__init__(config, keeper)
        self.http = http or httpx.Client(follow_redirects=True)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def renew(self, used_token: str | None) -> None:
        with self._lock:
            if self.keeper.access_token != used_token:
                return  # another thread renewed it meanwhile
            url, form = self._token_call()
            try:
                r = self.http.post(url, data=form, timeout=self.config.timeout)
            except httpx.TransportError as exc:
                raise _connection_error(Call("POST", "admin", TOKEN_PATH, _none), url, exc) from exc
            if r.status_code != 200:
                raise self._renewal_failed(error_from_response(r, "admin"))
            self.keeper.apply(TokenSet.model_validate(r.json()))

    def call(self, call: Call[T]) -> T:
        with self.open(call) as response:
            response.read()
            return call.parse(response)

    @contextmanager
    def open(self, call: Call[Any]) -> Iterator[httpx.Response]:
        """Send ``call`` and yield the streaming answer (a 2xx/3xx; errors raise)."""
        response = self._send(call)
        try:
            yield response
        finally:
            response.close()

    def _send(self, call: Call[Any]) -> httpx.Response:
        url = self._url(call)
        attempt = 0
        renewed = False
        if call.auth and self.keeper.can_renew and self.keeper.stale():
            self.renew(self.keeper.access_token)
        while True:
            headers = self._headers(call)
            body = call.body() if call.body is not None else None
            request = self.http.build_request(
                call.method, url, params=call.params, json=call.json, data=call.data,
                content=body, headers=headers, timeout=self._timeout(call),
            )  # fmt: skip
            try:
                response = self.http.send(request, stream=True)
            except httpx.TransportError as exc:
                if attempt < self.config.retry.retries and _retryable_transport(call, exc):
                    time.sleep(self.config.retry.delay(attempt))
                    attempt += 1
                    continue
                raise _connection_error(call, url, exc) from exc
            status = response.status_code
            if status == 401 and call.auth and not renewed and self.keeper.can_renew:
                response.close()
                self.renew(headers["Authorization"].removeprefix("Bearer "))
                renewed = True
                continue
            if status == 503 and call.retry_on_503 and attempt < self.config.retry.retries:
                response.close()
                time.sleep(self.config.retry.delay(attempt, _retry_after(response)))
                attempt += 1
                continue
            if status >= 400:
                try:
                    response.read()
                finally:
                    response.close()
                raise error_from_response(response, call.service)
            return response


class AsyncTransport(_Base):
    def __init__(
        self, config: ClientConfig, keeper: TokenKeeper, http: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__(config, keeper)
        self.http = http or httpx.AsyncClient(follow_redirects=True)
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def renew(self, used_token: str | None) -> None:
        async with self._lock:
            if self.keeper.access_token != used_token:
                return
            url, form = self._token_call()
            try:
                r = await self.http.post(url, data=form, timeout=self.config.timeout)
            except httpx.TransportError as exc:
                raise _connection_error(Call("POST", "admin", TOKEN_PATH, _none), url, exc) from exc
            if r.status_code != 200:
                raise self._renewal_failed(error_from_response(r, "admin"))
            self.keeper.apply(TokenSet.model_validate(r.json()))

    async def call(self, call: Call[T]) -> T:
        async with self.open(call) as response:
            await response.aread()
            return call.parse(response)

    @asynccontextmanager
    async def open(self, call: Call[Any]) -> AsyncIterator[httpx.Response]:
        response = await self._send(call)
        try:
            yield response
        finally:
            await response.aclose()

    async def _send(self, call: Call[Any]) -> httpx.Response:
        url = self._url(call)
        attempt = 0
        renewed = False
        if call.auth and self.keeper.can_renew and self.keeper.stale():
            await self.renew(self.keeper.access_token)
        while True:
            headers = self._headers(call)
            body = call.body() if call.body is not None else None
            request = self.http.build_request(
                call.method, url, params=call.params, json=call.json, data=call.data,
                content=_async_body(body), headers=headers, timeout=self._timeout(call),
            )  # fmt: skip
            try:
                response = await self.http.send(request, stream=True)
            except httpx.TransportError as exc:
                if attempt < self.config.retry.retries and _retryable_transport(call, exc):
                    await asyncio.sleep(self.config.retry.delay(attempt))
                    attempt += 1
                    continue
                raise _connection_error(call, url, exc) from exc
            status = response.status_code
            if status == 401 and call.auth and not renewed and self.keeper.can_renew:
                await response.aclose()
                await self.renew(headers["Authorization"].removeprefix("Bearer "))
                renewed = True
                continue
            if status == 503 and call.retry_on_503 and attempt < self.config.retry.retries:
                await response.aclose()
                await asyncio.sleep(self.config.retry.delay(attempt, _retry_after(response)))
                attempt += 1
                continue
            if status >= 400:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                raise error_from_response(response, call.service)
            return response


def _async_body(body: Iterable[bytes] | bytes | None) -> Any:
    """httpx.AsyncClient wants an async iterator for streamed bodies; the file chunks are
    read in a worker thread so the event loop never blocks on disk I/O."""
    if body is None or isinstance(body, bytes):
        return body

    async def chunks() -> AsyncIterator[bytes]:
        it = iter(body)
        done = object()
        while True:
            chunk = await asyncio.to_thread(next, it, done)
            if chunk is done:
                return
            assert isinstance(chunk, bytes)
            yield chunk

    return chunks()


def _none(_: httpx.Response) -> None:
    return None
