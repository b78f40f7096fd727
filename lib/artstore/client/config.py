"""Where the services are, how long to wait and how hard to retry: one object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

DEFAULT_ADMIN_URL = "http://127.0.0.1:8000"
DEFAULT_INGESTER_URL = "http://127.0.0.1:8020"
DEFAULT_QUERY_URL = "http://127.0.0.1:8030"

ENV_URL = "ARTSTORE_URL"  # the gateway: one address for every service
ENV_ADMIN_URL = "ARTSTORE_ADMIN_URL"
ENV_INGESTER_URL = "ARTSTORE_INGESTER_URL"
ENV_QUERY_URL = "ARTSTORE_QUERY_URL"
ENV_TOKEN = "ARTSTORE_TOKEN"  # noqa: S105 - the variable's name, not a secret


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent requests on 503 and on connection failures.

    ``retries`` is the number of extra attempts; the n-th waits ``backoff * 2**n``
    seconds (at most ``max_backoff``; a ``Retry-After`` header is honoured up to that
    cap), with jitter so many clients do not retry in step.
    """

    retries: int = 3
    backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        import random

        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        base = min(self.backoff * (2.0**attempt), self.max_backoff)
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


@dataclass(frozen=True)
class ClientConfig:
    """Base URLs of the three public services, the credentials and the timeouts.

    ``token`` is an access token; with ``refresh_token`` (a user session) or
    ``client_id``/``client_secret`` (a service account) the client gets a new one when
    it expires or a service answers 401, and reports it through ``on_tokens``.
    """

    admin_url: str = DEFAULT_ADMIN_URL
    ingester_url: str = DEFAULT_INGESTER_URL
    query_url: str = DEFAULT_QUERY_URL
    token: str | None = None
    refresh_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    timeout: float = 30.0
    connect_timeout: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    chunk_size: int = 1024 * 1024
    user_agent: str = "artstore-client/0.1"

    def __post_init__(self) -> None:
        for name in ("admin_url", "ingester_url", "query_url"):
            object.__setattr__(self, name, getattr(self, name).rstrip("/"))

    def base_url(self, service: str) -> str:
        return {
            "admin": self.admin_url,
            "ingester": self.ingester_url,
            "query": self.query_url,
        }[service]

    @classmethod
    def at(cls, url: str, **changes: object) -> ClientConfig:
        """Every service at one address: the gateway's (deploy/gateway routes each path)."""
        return cls(admin_url=url, ingester_url=url, query_url=url, **changes)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> ClientConfig:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, **overrides: object) -> ClientConfig:
        """Defaults, then ``ARTSTORE_URL`` (every service), ``ARTSTORE_*_URL`` (one
        service each) and ``ARTSTORE_TOKEN``, then ``overrides``."""
        one = os.environ.get(ENV_URL)
        values: dict[str, object] = {
            "admin_url": os.environ.get(ENV_ADMIN_URL) or one or DEFAULT_ADMIN_URL,
            "ingester_url": os.environ.get(ENV_INGESTER_URL) or one or DEFAULT_INGESTER_URL,
            "query_url": os.environ.get(ENV_QUERY_URL) or one or DEFAULT_QUERY_URL,
            "token": os.environ.get(ENV_TOKEN) or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
