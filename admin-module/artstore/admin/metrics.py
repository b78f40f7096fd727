"""The admin's own Prometheus figures (``artstore_admin_*``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class AdminMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.tokens_issued = Counter(
            "artstore_admin_tokens_issued_total",
            "Access tokens issued, by grant",
            ("grant",),
            registry=registry,
        )
        self.token_errors = Counter(
            "artstore_admin_token_errors_total",
            "Refused token requests, by RFC 6749 error",
            ("error",),
            registry=registry,
        )
        self.se_polls = Counter(
            "artstore_admin_se_polls_total",
            "Storage elements polled (each SE each round counts once)",
            registry=registry,
        )
