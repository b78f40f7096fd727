"""Readiness of the ingester (architecture §7): it can place files as long as it has a registry."""

from __future__ import annotations

import time

from artstore.common.health import CheckResult, HealthCheck
from artstore.common.registry import KIND_MODE, StorageRegistry


def health_checks(registry: StorageRegistry) -> dict[str, HealthCheck]:
    async def registry_check() -> CheckResult:
        if not registry.ever_loaded:
            return CheckResult("fail", f"SE registry never read: {registry.last_error}")
        if not registry.reachable:
            assert registry.loaded_at is not None
            age = round(time.monotonic() - registry.loaded_at)
            return CheckResult(
                "degraded",
                f"admin unreachable ({registry.last_error}); placing with the registry "
                f"read {age}s ago",
            )
        return CheckResult("ok")

    async def storage_check() -> CheckResult:
        if not registry.ever_loaded:
            return CheckResult("fail", "SE registry never read")
        missing = [
            f"no writable {mode} SE ({kind} files)"
            for kind, mode in KIND_MODE.items()
            if not registry.writable(kind)
        ]
        return CheckResult("degraded", "; ".join(missing)) if missing else CheckResult("ok")

    return {"registry": registry_check, "storage": storage_check}
