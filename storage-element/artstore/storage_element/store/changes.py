"""Every kind of durable change, in one table: its fault steps, its commit point and the
rule by which recovery decides an interrupted one.

The write path names its fault points through :meth:`ChangeKind.step` (a typo or a step
missing here fails at once), ``faults.py`` builds ``SE_CRASH_AT``'s steps from this
table, and the crash tests run every step listed here on every write path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# How recovery resolves a change that has a ``begin`` but no outcome in the journal.
Rule = Literal["attr_present", "attr_version", "attr_absent", "mode_file"]

RULES: dict[Rule, str] = {
    "attr_present": "done iff the attr reached its final name; else its blob is removed",
    "attr_version": "done iff the attr on disk carries the version being written",
    "attr_absent": "done iff the attr is gone; then the blob is removed too",
    "mode_file": "done iff mode.json names the target mode",
}


@dataclass(frozen=True)
class ChangeKind:
    name: str
    # The mode operation the change needs at its commit point; None: upkeep, any mode.
    operation: str | None
    steps: tuple[str, ...]
    commit_point: str  # the first step at which the change is done
    rule: Rule
    file_change: bool = True  # owes a catalog row once done

    def step(self, suffix: str) -> str:
        name = f"{self.name}.{suffix}"
        if name not in self.steps:
            raise KeyError(f"{name} is not a step of {self.name}")
        return name

    def done_at(self, step: str) -> bool:
        """Whether a crash at ``step`` must leave the change done (after recovery)."""
        return self.steps.index(step) >= self.steps.index(self.commit_point)


def _kind(
    name: str,
    operation: str | None,
    suffixes: tuple[str, ...],
    commit: str,
    rule: Rule,
    *,
    file_change: bool = True,
) -> ChangeKind:
    return ChangeKind(
        name,
        operation,
        tuple(f"{name}.{s}" for s in suffixes),
        f"{name}.{commit}",
        rule,
        file_change,
    )


_ATTR_VERSION = ("after_begin", "after_tmp_attr", "after_attr_rename", "after_commit")

UPLOAD = _kind(
    "upload",
    "upload",
    (
        "after_begin",
        "after_tmp_blob",
        "after_tmp_attr",
        "after_blob_rename",
        "after_attr_rename",  # the attr at its final name: the commit point
        "after_dir_fsync",
        "after_commit",
        "after_catalog",
    ),
    "after_attr_rename",
    "attr_present",
)
UPDATE = _kind("update", "update", _ATTR_VERSION, "after_attr_rename", "attr_version")
DELETE = _kind("delete", "delete", _ATTR_VERSION, "after_attr_rename", "attr_version")
EXPIRE = _kind("expire", None, _ATTR_VERSION, "after_attr_rename", "attr_version")
# A preview sidecar (issue 16): the sidecar is written under a new name first, then the
# attr names it (the commit point); a replaced sidecar is removed after that, before the
# journal's commit. Recovery: attr_version, plus the record's ``sidecar`` removed on
# abort (never named) and its ``drop`` list removed on commit. Removing a preview passes
# the same steps but ``after_sidecar_write``. Needs ``update`` (allowed in edit and rw).
PREVIEW = _kind(
    "preview",
    "update",
    (
        "after_begin",
        "after_sidecar_write",
        "after_tmp_attr",
        "after_attr_rename",
        "after_old_removed",
        "after_commit",
    ),
    "after_attr_rename",
    "attr_version",
)
RECLAIM = _kind(
    "reclaim",
    None,
    # after_blob_remove: the blob and every preview sidecar are gone.
    ("after_begin", "after_attr_remove", "after_blob_remove", "after_commit"),
    "after_attr_remove",
    "attr_absent",
)
MODE = _kind(
    "mode",
    None,
    ("after_begin", "after_write", "after_commit"),
    "after_write",
    "mode_file",
    file_change=False,
)

CHANGES: dict[str, ChangeKind] = {
    k.name: k for k in (UPLOAD, UPDATE, DELETE, EXPIRE, PREVIEW, RECLAIM, MODE)
}
FILE_KINDS = tuple(k.name for k in CHANGES.values() if k.file_change)
