"""``artstore quarantine ...``: every SE's quarantined copies (through the admin),
restore (a repair job) and purge (for good, confirmed)."""

from __future__ import annotations

from typing import Annotated

import typer

from artstore.cli import runtime
from artstore.client.models import QuarantinedItem

app = typer.Typer(
    help="Quarantined copies on the storage elements: list, restore, purge.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
SeArg = Annotated[str, typer.Argument(help="The storage element's id")]
ItemArg = Annotated[str, typer.Argument(help="The item's id (from `quarantine list`)")]

HEADERS = ["se", "item", "file_id", "state", "reason", "quarantined", "size"]


def _row(i: QuarantinedItem) -> list[object]:
    return [i.storage_element_id, i.item, i.file_id or "-", i.state, i.reason,
            i.quarantined_at, i.size]  # fmt: skip


@app.command("list")
def list_(
    se: Annotated[str | None, typer.Option("--se", help="Only this SE's items")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Quarantined copies on every SE, with their state (admin:read)."""
    with runtime.client() as c:
        page = c.quarantine(storage_element_id=se, limit=limit, offset=offset)
    if json_out:
        runtime.print_json(page)
        return
    runtime.table(HEADERS, [_row(i) for i in page.items])
    for u in page.unreachable:
        typer.echo(f"unreachable: {u.storage_element_id} ({u.reason})", err=True)


@app.command()
def restore(se: SeArg, item: ItemArg, json_out: JsonOpt = False) -> None:
    """Queue a repair of the item's file onto that SE (admin:write)."""
    with runtime.client() as c:
        accepted = c.restore_quarantined(se, item)
    if json_out:
        runtime.print_json(accepted)
    elif accepted.already_queued:
        typer.echo(f"a repair of {accepted.file_id} was already queued: job {accepted.job_id}")
    else:
        typer.echo(f"repair of {accepted.file_id} queued: job {accepted.job_id}")


@app.command()
def purge(
    se: SeArg,
    item: ItemArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask (scripts)")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Remove a quarantined copy's bytes for good (admin:write)."""
    if not yes:
        typer.confirm(f"Purge {item} on {se} for good?", abort=True)
    with runtime.client() as c:
        done = c.purge_quarantined(se, item, confirm=item)
    if json_out:
        runtime.print_json(done)
    else:
        typer.echo(f"purged {done.path} on {done.storage_element_id}: {done.bytes_freed} bytes")
