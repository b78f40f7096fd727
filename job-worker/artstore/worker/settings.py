"""Job worker settings (``WK_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from artstore.common.settings import ServiceSettings
from artstore.worker.previews.settings import PreviewSettings
from artstore.worker.repair.settings import RepairSettings


def _cron(value: str) -> str:
    from croniter import croniter

    if value and not croniter.is_valid(value):
        raise ValueError(f"not a cron expression: {value!r}")
    return value


class WorkerSettings(ServiceSettings, RepairSettings, PreviewSettings):
    model_config = SettingsConfigDict(
        env_prefix="WK_", env_file=".env", extra="ignore", populate_by_name=True
    )

    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(8040, description="Port to listen on (health and metrics)")
    client_id: str = Field(
        "", description="Service account of the worker (SE registry, SE-bound tokens)"
    )
    client_secret: str = Field("", description="Its secret")
    credentials_file: Path = Field(
        Path(""),
        description="Used when `WK_CLIENT_ID` is empty: the admin's "
        "`bootstrap-credentials.json`, whose `worker` entry is taken",
    )
    extra_task_modules: str = Field(
        "",
        description="More modules with `@job` functions to run (comma-separated, importable "
        "names): jobs outside this package",
    )
    concurrency: int = Field(4, description="Jobs this worker runs at once", ge=1, le=64)
    registry_poll_interval: float = Field(
        10.0, description="Seconds between reads of the admin's SE registry", gt=0
    )
    gc_cron: str = Field(
        "7 * * * *", description="When `se.gc` runs on every SE (cron, UTC); empty = never"
    )
    reconcile_cron: str = Field(
        "37 3 * * *",
        description="When `se.reconcile` runs on every SE (cron, UTC); empty = never",
    )
    scrub_cron: str = Field(
        "23 2 * * *",
        description="When `se.scrub` asks every SE for a scrub pass and waits for its end "
        "(cron, UTC); empty = never (each SE still scrubs by itself, "
        "`SE_SCRUB_PASS_INTERVAL`)",
    )
    repair_scan_cron: str = Field(
        "*/10 * * * *", description="When `repair.scan` runs (cron, UTC); empty = never"
    )
    prune_cron: str = Field(
        "47 4 * * *", description="When `jobs.prune` runs (cron, UTC); empty = never"
    )
    lost_check_cron: str = Field(
        "* * * * *",
        description="When runs of a worker that died are looked for (cron, UTC; they are "
        "marked failed, `worker lost`, and queued again where the job allows)",
    )
    history_days: int = Field(
        30, description="Days the history of ended jobs is kept (`jobs.prune`)", ge=1
    )
    stalled_seconds: float = Field(
        30.0,
        description="Seconds without a heartbeat after which a worker is taken for dead "
        "(its running jobs are then `worker lost`)",
        gt=0,
    )
    se_timeout: float = Field(
        600.0,
        description="Seconds to wait for a storage element's answer (a maintenance call "
        "answers when the work is done)",
        gt=0,
    )
    se_connect_timeout: float = Field(3.0, description="Seconds to connect to an SE", gt=0)
    shutdown_timeout: float = Field(
        10.0,
        description="Seconds running jobs get to finish when the worker stops; then they "
        "are aborted (and retried where the job allows)",
        ge=0,
    )

    @field_validator(
        "gc_cron",
        "reconcile_cron",
        "scrub_cron",
        "repair_scan_cron",
        "prune_cron",
        "lost_check_cron",
    )
    @classmethod
    def _check_cron(cls, value: str) -> str:
        return _cron(value)
