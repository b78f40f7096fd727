"""The files whose catalog row PostgreSQL refused for its data (issue 11).

Such an update is not owed (its journal transaction is closed, the queue moves on); the
file id and a short reason code are kept here instead, shown in maintenance status and
``/metrics``, and retried by reconcile. A later successful write of the row (the attr
fixed by a PATCH, a reconcile, a rebuild) or the file's removal clears the entry.

Persisted as ``catalog-refused.json`` in the data directory (written atomically on every
change; refusals are rare), so a restart does not forget them: the journal no longer
remembers those updates. Loaded lazily by the first async use (no blocking read while
the node is built).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from artstore.storage_element.fsutil import atomic_replace

log = logging.getLogger("artstore.storage_element.catalog")

FILE_NAME = "catalog-refused.json"
SHOWN = 100  # ids listed in maintenance status


class RefusedFiles:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._reasons: dict[str, str] = {}  # file id -> reason code, oldest first
        self._loaded = path is None
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._reasons)

    def __contains__(self, file_id: object) -> bool:
        return file_id in self._reasons

    def ids(self, limit: int = SHOWN) -> list[str]:
        return list(self._reasons)[:limit]

    def reasons(self) -> dict[str, str]:
        return dict(self._reasons)

    def status(self) -> dict[str, Any]:
        return {"refused": len(self._reasons), "refused_file_ids": self.ids()}

    async def load(self) -> None:
        """Read the persisted set once (later calls return at once)."""
        if self._loaded:
            return
        async with self._lock:
            if self._loaded:
                return
            assert self.path is not None
            stored = await asyncio.to_thread(_read, self.path)
            # Anything recorded before the load is newer than the file.
            self._reasons = {**stored, **self._reasons}
            self._loaded = True

    async def settle(
        self, landed: Iterable[str] = (), refused: Mapping[str, str] | None = None
    ) -> None:
        """``landed`` rows were written (or removed): no longer refused; ``refused`` ones
        (file id -> reason) were refused. Persisted when anything changed."""
        await self.load()
        changed = False
        for file_id in landed:
            if self._reasons.pop(file_id, None) is not None:
                changed = True
        for file_id, reason in (refused or {}).items():
            if self._reasons.get(file_id) != reason:
                if file_id not in self._reasons:
                    log.error(
                        "catalog refused the row of a file for its data; not retried "
                        "until reconcile",
                        extra={"fields": {"file_id": file_id, "reason": reason}},
                    )
                self._reasons[file_id] = reason
                changed = True
        if changed:
            await self._save()

    async def retain(self, present: Iterable[str]) -> None:
        """Forget entries whose file is not among ``present`` (gone, quarantined)."""
        await self.load()
        keep = set(present)
        gone = [f for f in self._reasons if f not in keep]
        if gone:
            await self.settle(landed=gone)

    async def _save(self) -> None:
        if self.path is None:
            return
        async with self._lock:
            body = json.dumps({"refused": self._reasons}, sort_keys=True).encode()
            try:
                await asyncio.to_thread(atomic_replace, self.path, body, self.path.parent)
            except OSError:
                # Kept in memory; reconcile finds the rows again after a restart.
                log.exception("could not persist the refused catalog rows")


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.exception("unreadable %s: starting with no refused rows", path.name)
        return {}
    refused = data.get("refused") if isinstance(data, dict) else None
    if not isinstance(refused, dict):
        return {}
    return {str(k): str(v) for k, v in refused.items()}
