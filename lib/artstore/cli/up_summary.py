"""What ``artstore up`` prints once everything is ready: one table and a short tour."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from artstore.cli.children import Child


def _plain(console: Console, line: str) -> None:
    console.print(line, soft_wrap=True, markup=False, highlight=False)


def print_summary(
    console: Console, root: Path, children: list[Child], db: tuple[str, str], password: str
) -> None:
    table = Table(title="ArtStore is up", title_justify="left")
    table.add_column("service", no_wrap=True)
    table.add_column("URL", overflow="fold")
    table.add_column("Swagger UI", overflow="fold")
    for child in children:
        table.add_row(child.label, child.url, f"{child.url}/docs")
    console.print(table)
    for label, value in (
        ("admin login", f"admin / {password}   (Swagger's Authorize button takes it)"),
        # The secrets are on this terminal and in that file only, never in the logs.
        ("credentials", f"{root / 'admin' / 'bootstrap-credentials.json'} (mode 0600)"),
        (db[1], make_url(db[0]).render_as_string(hide_password=True)),
        ("data", str(root)),
        ("logs", str(root / "logs")),
    ):
        _plain(console, f"{label}: {value}")
    admin, ingester, query = (
        next(c.url for c in children if c.service == s) for s in ("admin", "ingester", "query")
    )
    console.print("\ntry it with the CLI:", style="bold")
    for line in (
        f"artstore login --username admin --password '{password}'",
        "artstore upload README.md --tag docs",
        "artstore search readme",
        "artstore download <file_id> -o copy.md",
        "artstore jobs list   # background jobs: SE maintenance, repairs (docs/jobs.md)",
    ):
        _plain(console, line)
    console.print("\nor with curl:", style="bold")
    for line in (
        f"TOKEN=$(curl -s -d grant_type=password -d username=admin -d 'password={password}' "
        f"{admin}/api/v1/auth/token | python3 -c 'import json,sys; "
        'print(json.load(sys.stdin)["access_token"])\')',
        f'curl -H "Authorization: Bearer $TOKEN" -F file=@README.md {ingester}/api/v1/files/upload',
        f'curl -H "Authorization: Bearer $TOKEN" "{query}/api/v1/search?q=readme"',
        f'curl -H "Authorization: Bearer $TOKEN" -OJ {query}/api/v1/files/<file_id>/download',
    ):
        _plain(console, line)
    console.print("\nready; press Ctrl-C to stop")
