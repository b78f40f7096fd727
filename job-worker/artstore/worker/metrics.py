"""The worker's own Prometheus figures (``artstore_worker_*``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.jobs_run = Counter(
            "artstore_worker_jobs_run_total",
            "Job runs this worker started, by kind",
            ("kind",),
            registry=registry,
        )
        self.jobs_ended = Counter(
            "artstore_worker_jobs_ended_total",
            "Job runs this worker ended, by kind and state (succeeded, failed, cancelled, "
            "queued again for a retry)",
            ("kind", "state"),
            registry=registry,
        )
        self.jobs_failed = Counter(
            "artstore_worker_jobs_failed_total",
            "Job runs that failed (on this worker, or found lost by it), by kind",
            ("kind",),
            registry=registry,
        )
