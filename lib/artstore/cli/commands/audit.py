"""``artstore audit``: read the admin's hash-chained audit log, or verify the chain."""

from __future__ import annotations

from typing import Annotated

import typer

from artstore.cli import runtime
from artstore.cli.app import fail


def audit(
    actor: Annotated[str | None, typer.Option(help="Who (username, client id)")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. user.create, login.failure")] = None,
    target_type: Annotated[str | None, typer.Option(help="user, service_account, ...")] = None,
    target_id: Annotated[str | None, typer.Option(help="The target's id")] = None,
    since: Annotated[str | None, typer.Option(help="From (RFC 3339, inclusive)")] = None,
    until: Annotated[str | None, typer.Option(help="To (RFC 3339, inclusive)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain instead")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Audit entries, newest first (audit:read); --verify checks the whole chain."""
    with runtime.client() as c:
        if verify:
            result = c.verify_audit()
            if json_out:
                runtime.print_json(result)
            elif result.ok:
                typer.echo(f"audit chain intact ({result.entries_checked} entries)")
            if not result.ok:
                fail(f"audit chain broken at entry {result.first_bad_seq} "
                     f"({result.entries_checked} checked): {result.reason or 'see the log'}",
                     "AUDIT_CHAIN_BROKEN")  # fmt: skip
            return
        page = c.audit(actor=actor, action=action, target_type=target_type, target_id=target_id,
                       since=since, until=until, limit=limit, offset=offset)  # fmt: skip
    if json_out:
        runtime.print_json(page)
        return
    runtime.table(
        ["seq", "at", "actor", "action", "target", "outcome"],
        [[e.seq, e.at, f"{e.actor} ({e.actor_kind})", e.action,
          f"{e.target_type}:{e.target_id}" if e.target_type else None, e.outcome]
         for e in page.items],
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command()(audit)
