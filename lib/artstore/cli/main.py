"""The ``artstore`` command."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from artstore.cli import runtime
from artstore.cli.app import ArtStoreTyper
from artstore.cli.commands import admin, audit, auth, files, jobs, preview, quarantine, se

# ArtStoreTyper turns every failure into one `error: ... (CODE)` line (see app.py).
app = ArtStoreTyper(
    name="artstore",
    help="ArtStore: a distributed file store for long-lived documents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    url: Annotated[
        str | None,
        typer.Option(
            envvar="ARTSTORE_URL",
            help="One address for every service: the gateway's (the per-service URLs win)",
        ),
    ] = None,
    admin_url: Annotated[
        str | None,
        typer.Option(envvar="ARTSTORE_ADMIN_URL", help="Admin URL [default: login's, else :8000]"),
    ] = None,
    ingester_url: Annotated[
        str | None,
        typer.Option(envvar="ARTSTORE_INGESTER_URL", help="Ingester URL [default: :8020]"),
    ] = None,
    query_url: Annotated[
        str | None,
        typer.Option(envvar="ARTSTORE_QUERY_URL", help="Query URL [default: :8030]"),
    ] = None,
    progress: Annotated[
        bool, typer.Option(help="Progress bars on a terminal (--no-progress: none)")
    ] = True,
) -> None:
    """ArtStore: a distributed file store for long-lived documents.

    Client commands keep their login in the user's config dir
    ($ARTSTORE_CONFIG_DIR, else ~/.config/artstore); ARTSTORE_TOKEN overrides it.
    """
    runtime.settings.url = url
    runtime.settings.admin_url = admin_url
    runtime.settings.ingester_url = ingester_url
    runtime.settings.query_url = query_url
    runtime.settings.progress = progress


auth.register(app)
files.register(app)
audit.register(app)
preview.register(app)
app.add_typer(se.app, name="se")
app.add_typer(admin.app, name="admin")
app.add_typer(jobs.app, name="jobs")
app.add_typer(quarantine.app, name="quarantine")


def _installed_service(name: str) -> str:
    from artstore.cli.services import load

    try:
        load(name)  # the entry module only: its service is imported by make_app
    except LookupError as exc:
        raise typer.BadParameter(str(exc)) from None
    return name


@app.command()
def serve(
    service: Annotated[
        str,
        typer.Argument(
            help="Which service to run: admin, storage-element, ingester, query, worker",
            callback=_installed_service,
        ),
    ],
    host: Annotated[str | None, typer.Option(help="Override the service's host setting")] = None,
    port: Annotated[int | None, typer.Option(help="Override the service's port setting")] = None,
) -> None:
    """Run one service in the foreground (settings from the environment)."""
    import uvicorn

    from artstore.cli.services import load
    from artstore.common.limits import server_options

    asgi_app, default_host, listen_port = load(service).make_app(port)
    uvicorn.run(
        asgi_app,
        host=host or default_host,
        port=listen_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        **server_options(),
    )


@app.command()
def migrate(
    database_url: Annotated[str, typer.Option(envvar="DATABASE_URL", help="PostgreSQL URL")],
) -> None:
    """Apply every database migration (safe to run concurrently and repeatedly)."""
    from artstore.cli.migrate import upgrade

    upgrade(database_url)
    typer.echo("database is at the newest schema")


@app.command("settings-table")
def settings_table(
    write: Annotated[bool, typer.Option(help="Rewrite the table in README.md")] = False,
) -> None:
    """Print (or --write into README.md) the table of every setting and its default."""
    from pathlib import Path

    from artstore.cli.settings_doc import current_table, replace_in

    table = current_table()
    if not write:
        typer.echo(table)
        return
    readme = Path("README.md")
    readme.write_text(replace_in(readme.read_text(), table))
    typer.echo("README.md settings table updated")


@app.command()
def up(
    data_dir: Annotated[
        str, typer.Option(help="Where data and the embedded DB live")
    ] = ".artstore",
) -> None:
    """Start ArtStore locally on an embedded default (Ctrl-C stops everything)."""
    from artstore.cli.up import run_up

    raise typer.Exit(run_up(data_dir, os.environ.get("DATABASE_URL", "")))


if __name__ == "__main__":
    app()
