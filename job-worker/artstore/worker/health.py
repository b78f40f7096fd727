"""Readiness of the worker (architecture §7): the database answers and the queue worker runs."""

from __future__ import annotations

from artstore.common.health import CheckResult, HealthCheck
from artstore.common.redact import describe
from artstore.jobs import repository
from artstore.worker.state import WorkerState


def health_checks(state: WorkerState) -> dict[str, HealthCheck]:
    async def database() -> CheckResult:
        try:
            await repository.ping(state.engine)
        except Exception as exc:  # any driver error means "not reachable"
            return CheckResult("fail", f"database unreachable: {describe(exc)}")
        return CheckResult("ok")

    async def queue() -> CheckResult:
        runner = state.runner
        if runner is None:
            return CheckResult("fail", "queue worker not started")
        if runner.done():
            error = None if runner.cancelled() else runner.exception()
            why = describe(error) if error is not None else "stopped"
            return CheckResult("fail", f"queue worker not running: {why}")
        return CheckResult("ok")

    async def registry() -> CheckResult:
        if not state.registry.ever_loaded:
            return CheckResult("degraded", f"SE registry never read: {state.registry.last_error}")
        if not state.registry.reachable:
            return CheckResult("degraded", f"admin unreachable: {state.registry.last_error}")
        return CheckResult("ok")

    return {"database": database, "queue": queue, "registry": registry}
