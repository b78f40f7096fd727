"""``artstore jobs ...``: the history of background jobs (through the admin), cancel and
retry."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from artstore.cli import runtime
from artstore.client.models import JobRun

app = typer.Typer(help="Background jobs: history, cancel, retry.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
JobId = Annotated[int, typer.Argument(help="The job run's id", min=1)]


class State(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


def _row(j: JobRun) -> list[object]:
    return [j.id, j.kind, j.state, j.storage_element_id or j.target, j.queued_at,
            j.finished_at, j.attempts, (j.error or "")[:60]]  # fmt: skip


HEADERS = ["id", "kind", "state", "target", "queued", "finished", "attempts", "error"]


@app.command("list")
def list_(
    kind: Annotated[str | None, typer.Option(help="e.g. se.gc, repair.file")] = None,
    state: Annotated[State | None, typer.Option(help="Only runs in this state")] = None,
    se: Annotated[str | None, typer.Option("--se", help="Only runs on this SE")] = None,
    since: Annotated[str | None, typer.Option(help="Queued at or after (RFC 3339)")] = None,
    until: Annotated[str | None, typer.Option(help="Queued before (RFC 3339)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Job runs, newest first (admin:read)."""
    with runtime.client() as c:
        page = c.jobs(kind=kind, state=state.value if state else None, storage_element_id=se,
                      since=since, until=until, limit=limit, offset=offset)  # fmt: skip
    if json_out:
        runtime.print_json(page)
        return
    runtime.table(HEADERS, [_row(j) for j in page.items])


@app.command()
def show(job_id: JobId, json_out: JsonOpt = False) -> None:
    """One run: arguments, times, summary and error (admin:read)."""
    with runtime.client() as c:
        run = c.job(job_id)
    if json_out:
        runtime.print_json(run)
        return
    runtime.fields(run.model_dump().items())


@app.command()
def cancel(job_id: JobId, json_out: JsonOpt = False) -> None:
    """Cancel a queued run, or ask a running one to stop (admin:write)."""
    with runtime.client() as c:
        run = c.cancel_job(job_id)
    if json_out:
        runtime.print_json(run)
    elif run.state == "cancelled":
        typer.echo(f"job {run.id} cancelled")
    else:
        typer.echo(f"job {run.id} is {run.state}: asked to stop")


@app.command()
def retry(job_id: JobId, json_out: JsonOpt = False) -> None:
    """Queue a failed or cancelled run again, as a new run (admin:write)."""
    with runtime.client() as c:
        run = c.retry_job(job_id)
    if json_out:
        runtime.print_json(run)
    else:
        typer.echo(f"job {job_id} queued again as job {run.id}")
