"""Tokens bound to one storage element, obtained by token exchange (architecture §10, RFC 8693).

A service acting towards an SE (the ingester, the query module) never sends a token that
anything else would accept: it trades the token it holds (the caller's, or its own) at the
admin for one whose ``aud`` is that SE's storage id, with ``act`` naming the service. A
rogue or compromised SE thus only ever sees tokens good at itself, for a few minutes.

Exchanged tokens are cached per (subject token, SE) until shortly before they expire, so
a burst of requests with one token costs one exchange per SE.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass

import httpx

from artstore.common.errors import Unauthorized, UpstreamUnavailable
from artstore.common.registry import ServiceToken

log = logging.getLogger("artstore.se_tokens")

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
# Renewed this long before expiry (at most a quarter of its life): an exchanged token
# must still be valid when the SE reads it, after the request's own queueing.
_MARGIN = 30.0


class ExchangeRefused(UpstreamUnavailable):
    """The admin would not (or could not) issue a token for that SE: the SE cannot be
    used now (a stale registry, the admin away, a misconfigured service account)."""


@dataclass(frozen=True)
class _Bound:
    token: str
    renew_at: float  # monotonic


class SeTokens:
    """Exchange and cache. ``service`` authenticates the exchange (client id and secret
    of this service's account, which must hold ``storage:write``) and is the subject of
    :meth:`for_service`."""

    def __init__(self, service: ServiceToken, *, max_entries: int = 10_000) -> None:
        self.service = service
        self.max_entries = max_entries
        self._cache: dict[tuple[bytes, str], _Bound] = {}
        self._pending: dict[tuple[bytes, str], asyncio.Future[_Bound]] = {}

    async def for_caller(self, client: httpx.AsyncClient, subject: str, storage_id: str) -> str:
        """A token for ``storage_id`` acting for the holder of ``subject``."""
        key = (hashlib.sha256(subject.encode()).digest(), storage_id)
        known = self._cache.get(key)
        if known is not None and time.monotonic() < known.renew_at:
            return known.token
        pending = self._pending.get(key)
        if pending is not None:  # one exchange per key at a time
            return (await asyncio.shield(pending)).token
        future: asyncio.Future[_Bound] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            bound = await self._exchange(client, subject, storage_id)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._pending[key]
        future.set_result(bound)
        self._remember(key, bound)
        return bound.token

    async def for_service(self, client: httpx.AsyncClient, storage_id: str) -> str:
        """A token for ``storage_id`` of this service's own account (acting for itself)."""
        own = await self.service.get(client)
        return await self.for_caller(client, own, storage_id)

    def _remember(self, key: tuple[bytes, str], bound: _Bound) -> None:
        if len(self._cache) >= self.max_entries:
            now = time.monotonic()
            self._cache = {k: v for k, v in self._cache.items() if v.renew_at > now}
            while len(self._cache) >= self.max_entries:
                del self._cache[next(iter(self._cache))]  # the oldest entry
        self._cache[key] = bound

    async def _exchange(self, client: httpx.AsyncClient, subject: str, storage_id: str) -> _Bound:
        details = {"storage_element_id": storage_id}
        try:
            resp = await client.post(
                self.service.token_url,
                data={
                    "grant_type": TOKEN_EXCHANGE,
                    "subject_token": subject,
                    "subject_token_type": ACCESS_TOKEN_TYPE,
                    "requested_token_type": ACCESS_TOKEN_TYPE,
                    "audience": storage_id,
                },
                auth=(self.service.client_id, self.service.client_secret),
            )
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ExchangeRefused(
                "the token issuer cannot be reached to act towards the storage element",
                details={**details, "reason": type(exc).__name__},
            ) from exc
        if resp.status_code == 200 and isinstance(body, dict):
            token, life = body.get("access_token"), body.get("expires_in")
            if isinstance(token, str) and isinstance(life, int | float) and life > 0:
                margin = min(_MARGIN, life / 4)
                return _Bound(token, time.monotonic() + life - margin)
        error = body.get("error") if isinstance(body, dict) else None
        if error == "invalid_grant":
            # The caller's token is no longer good (expired or revoked since it was read).
            raise Unauthorized("the token can no longer be used")
        log.warning("token exchange for %s refused: %s %s", storage_id, resp.status_code, error)
        raise ExchangeRefused(
            "the token issuer refused a token for the storage element",
            details={**details, "reason": str(error or resp.status_code)},
        )
