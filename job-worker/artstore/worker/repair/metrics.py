"""Repair's Prometheus figures (``artstore_worker_*``, docs/repair.md), on the worker's
registry: one set per registry, made on first use."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class RepairMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.under_replicated = Gauge(
            "artstore_worker_under_replicated_files",
            "Live files with fewer healthy copies than the copies policy asks for (also "
            "those that too few rw SEs keep short), as the last repair.scan of this "
            "worker counted them",
            registry=registry,
        )
        self.unrecoverable = Gauge(
            "artstore_worker_unrecoverable_files",
            "Live files without a healthy copy to repair from, at the last repair.scan",
            registry=registry,
        )
        self.repair_bytes = Counter(
            "artstore_worker_repair_bytes_total",
            "Bytes repair copied from a healthy copy to a new one",
            registry=registry,
        )
        self.copies = Counter(
            "artstore_worker_repair_copies_total",
            "Repair copies, by outcome (made, failed)",
            ("outcome",),
            registry=registry,
        )


_made: dict[int, RepairMetrics] = {}


def repair_metrics(registry: CollectorRegistry | None) -> RepairMetrics:
    """The repair figures of ``registry`` (None: figures no endpoint serves, for a
    JobContext without one)."""
    key = id(registry)
    found = _made.get(key)
    if found is None:
        found = _made[key] = RepairMetrics(registry)
    return found
