"""``python -m tests.support.powerfs.daemon BACKING MOUNTPOINT REPORT``

Mounts the passthrough in the foreground (single-threaded). When unmounted (the test's
"power cut") it rewrites BACKING to exactly the durable state and writes the counters
as JSON to REPORT; exit status 0 only if that worked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mfusepy import FUSE

from tests.support.powerfs.ops import PowerOps


def main(argv: list[str]) -> int:
    backing, mountpoint, report = Path(argv[0]), Path(argv[1]), Path(argv[2])
    ops = PowerOps(backing)
    # hard_remove: unlink a file that is still open for real, as a local filesystem does.
    # Without it libfuse renames it to .fuse_hidden* until the (asynchronous) release, and
    # removing its folder right after a close fails with ENOTEMPTY.
    FUSE(ops, str(mountpoint), foreground=True, nothreads=True, fsname="powerfs", hard_remove=True)
    stats = ops.model.rebuild()
    report.write_text(json.dumps(stats.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
