"""The power-loss suite's totals, printed at the end of a ``pytest`` run (issue 12).

Tests add to ``TOTALS`` in the process that runs them; under xdist each worker hands its
totals to the controller (``workeroutput``), which prints the sum. The hooks are
registered from ``tests/conftest.py``, the one conftest the controller always loads.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

TOTALS: Counter[str] = Counter()
_KEY = "powerloss_totals"

LINES = (
    ("snapshot cuts (SE kept running)", "snapshot_cuts"),
    ("  of them with torn tail pages", "torn_snapshots"),
    ("full cuts (SE killed, disk rebuilt, SE restarted)", "cuts"),
    ("acknowledged writes checked in snapshots", "snapshot_checked"),
    ("acknowledged writes checked after full cuts", "full_checked"),
    ("file fsyncs seen by powerfs", "fsyncs"),
    ("directory fsyncs seen by powerfs", "dir_fsyncs"),
    ("live names a cut forgot (snapshots)", "snapshot_lost_entries"),
    ("live names a cut forgot (full cuts)", "lost_entries"),
)


def record(**counts: int) -> None:
    TOTALS.update(counts)


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = getattr(session.config, "workeroutput", None)
    if out is not None:  # an xdist worker: the controller prints
        out[_KEY] = json.dumps(dict(TOTALS))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    raw = getattr(node, "workeroutput", {}).get(_KEY)
    if raw:
        TOTALS.update(json.loads(raw))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TOTALS:
        return
    terminalreporter.write_sep("-", "power loss (issue 12)")
    for label, key in LINES:
        terminalreporter.write_line(f"{label}: {TOTALS.get(key, 0)}")
