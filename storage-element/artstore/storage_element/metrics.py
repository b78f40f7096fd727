"""The storage element's own figures (``artstore_storage_element_*``), read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from artstore.storage_element.state import SEState

P = "artstore_storage_element_"


class NodeCollector(Collector):
    def __init__(self, node: SEState) -> None:
        self.node = node

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        n = self.node
        cap = n.capacity
        yield GaugeMetricFamily(P + "files", "Attr files on this SE (any status)", cap.file_count)
        yield GaugeMetricFamily(P + "used_bytes", "Bytes used on the backend", cap.used_bytes)
        yield GaugeMetricFamily(
            P + "available_bytes", "Bytes still available", cap.available_bytes()
        )
        yield GaugeMetricFamily(P + "wal_pending", "Open journal transactions", n.journal.pending)
        yield CounterMetricFamily(P + "wal_fsyncs", "Journal fsyncs", n.journal.fsyncs)
        yield CounterMetricFamily(P + "wal_records", "Journal records", n.journal.appended)
        yield GaugeMetricFamily(
            P + "wal_failed",
            "1 once a journal write or fsync failed (writes refused until restart)",
            int(n.journal.failed),
        )
        yield GaugeMetricFamily(
            P + "recovery_set_aside",
            "Journal records recovery could not apply and set aside (all starts)",
            n.maintenance.recovery.set_aside_total,
        )
        group = n.group
        yield CounterMetricFamily(
            P + "group_commits",
            "Groups of small uploads published with one shared flush",
            group.groups if group else 0,
        )
        yield CounterMetricFamily(
            P + "group_commit_files",
            "Small uploads published in a group",
            group.published if group else 0,
        )
        yield GaugeMetricFamily(
            P + "catalog_owed_updates", "Catalog updates waiting for replay", len(n.catalog.owed)
        )
        yield GaugeMetricFamily(
            P + "catalog_reachable", "1 when the catalog answered last", int(n.catalog.reachable)
        )
        yield GaugeMetricFamily(
            P + "catalog_refused_rows",
            "Files whose catalog row PostgreSQL refused for its data (not owed)",
            len(n.catalog.refused),
        )
        yield CounterMetricFamily(
            P + "quarantined", "Copies moved to quarantine", n.maintenance.quarantined
        )
        yield CounterMetricFamily(
            P + "download_checksum_mismatches",
            "Downloads cut short because the bytes did not match",
            n.maintenance.download_mismatches,
        )
        yield CounterMetricFamily(
            P + "scrub_files_checked",
            "Files re-hashed by the scrubber",
            n.maintenance.scrub.files_checked,
        )
        mode = GaugeMetricFamily(P + "mode", "Current mode (1 for the active one)", labels=["mode"])
        for m in ("edit", "rw", "ro", "ar"):
            mode.add_metric([m], int(n.modes.current == m))
        yield mode
