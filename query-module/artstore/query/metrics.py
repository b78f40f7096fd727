"""The query module's own Prometheus figures (``artstore_query_*``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class QueryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.searches = Histogram(
            "artstore_query_search_duration_seconds",
            "Time of the catalog queries of one search",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
        )
        self.copy_failures = Counter(
            "artstore_query_download_copy_failures_total",
            "Copies that failed before the first byte and were skipped for the next, by reason",
            ("reason",),
            registry=registry,
        )
        self.cache = Counter(
            "artstore_query_cache_requests_total",
            "Metadata cache lookups, by result (hit, miss)",
            ("result",),
            registry=registry,
        )
        self.links = Counter(
            "artstore_query_links_total",
            "Signed links, by outcome (created, served, invalid, expired)",
            ("outcome",),
            registry=registry,
        )
