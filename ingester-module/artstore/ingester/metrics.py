"""The ingester's own figures (``artstore_ingester_*``), read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from artstore.common.registry import KIND_MODE, StorageRegistry

P = "artstore_ingester_"


@dataclass
class IngestStats:
    files_stored: int = 0
    bytes_stored: int = 0
    uploads_failed: int = 0


class IngesterCollector(Collector):
    def __init__(self, registry: StorageRegistry, stats: IngestStats) -> None:
        self.registry = registry
        self.stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        r = self.registry
        yield GaugeMetricFamily(P + "registry_reachable", "1 when the admin answered last",
                                int(r.reachable))  # fmt: skip
        writable = GaugeMetricFamily(
            P + "writable_storage_elements", "Online SEs that take files", labels=["mode"]
        )
        for kind, mode in KIND_MODE.items():
            writable.add_metric([mode], len(r.writable(kind)))
        yield writable
        s = self.stats
        yield CounterMetricFamily(P + "files_stored", "Files stored (all copies)", s.files_stored)
        yield CounterMetricFamily(P + "bytes_stored", "Bytes received and stored", s.bytes_stored)
        yield CounterMetricFamily(P + "uploads_failed", "Uploads that failed", s.uploads_failed)
