"""Fault injection: ``SE_CRASH_AT=<step>`` makes the process die hard at that step.

``os._exit`` skips every cleanup (no finally blocks, no flush), which is as close to
a power cut as a test can get without one: what was fsynced survives, nothing else
is promised. The steps are those of the change kinds' table (``store/changes.py``).
"""

from __future__ import annotations

import os
import sys

from artstore.storage_element.store.changes import (
    CHANGES,
    DELETE,
    EXPIRE,
    MODE,
    PREVIEW,
    RECLAIM,
    UPDATE,
    UPLOAD,
)

UPLOAD_STEPS = UPLOAD.steps
UPDATE_STEPS = UPDATE.steps
DELETE_STEPS = DELETE.steps
EXPIRE_STEPS = EXPIRE.steps
PREVIEW_STEPS = PREVIEW.steps
RECLAIM_STEPS = RECLAIM.steps
MODE_STEPS = MODE.steps
ALL_STEPS = tuple(step for kind in CHANGES.values() for step in kind.steps)

CRASH_EXIT_CODE = 77


class FaultInjector:
    def __init__(self, crash_at: str) -> None:
        if crash_at and crash_at not in ALL_STEPS:
            raise ValueError(f"unknown SE_CRASH_AT step {crash_at!r}; known: {ALL_STEPS}")
        self.crash_at = crash_at

    def point(self, step: str) -> None:
        if step == self.crash_at:
            sys.stderr.write(f"fault injection: crashing at {step}\n")
            sys.stderr.flush()
            os._exit(CRASH_EXIT_CODE)
