"""Fault injection: ``SE_CRASH_AT=<step>`` makes the process die hard at that step.

``os._exit`` skips every cleanup (no finally blocks, no flush), which is as close to
a power cut as a test can get without one: what was fsynced survives, nothing else
is promised.
"""

from __future__ import annotations

import os
import sys

UPLOAD_STEPS = (
    "upload.after_begin",
    "upload.after_tmp_blob",
    "upload.after_tmp_attr",
    "upload.after_blob_rename",
    "upload.after_attr_rename",
    "upload.after_dir_fsync",
    "upload.after_commit",
    "upload.after_catalog",
)
UPDATE_STEPS = (
    "update.after_begin",
    "update.after_tmp_attr",
    "update.after_attr_rename",
    "update.after_commit",
)
DELETE_STEPS = (
    "delete.after_begin",
    "delete.after_tmp_attr",
    "delete.after_attr_rename",
    "delete.after_commit",
)
EXPIRE_STEPS = (
    "expire.after_begin",
    "expire.after_tmp_attr",
    "expire.after_attr_rename",
    "expire.after_commit",
)
RECLAIM_STEPS = (
    "reclaim.after_begin",
    "reclaim.after_attr_remove",
    "reclaim.after_blob_remove",
    "reclaim.after_commit",
)
MODE_STEPS = ("mode.after_begin", "mode.after_write", "mode.after_commit")
ALL_STEPS = UPLOAD_STEPS + UPDATE_STEPS + DELETE_STEPS + EXPIRE_STEPS + RECLAIM_STEPS + MODE_STEPS

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
