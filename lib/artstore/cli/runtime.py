"""What every client command needs: the effective settings, a logged-in client, and
output (tables or JSON on stdout, progress bars and notes on stderr)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from artstore.client import Client, ClientConfig
from artstore.client.config import (
    DEFAULT_ADMIN_URL,
    DEFAULT_INGESTER_URL,
    DEFAULT_QUERY_URL,
    ENV_TOKEN,
)
from artstore.client.credentials import Credentials, CredentialStore
from artstore.client.errors import NotLoggedInError
from artstore.client.models import TokenSet

out = Console(soft_wrap=False, highlight=False)
err = Console(stderr=True, highlight=False)


@dataclass
class Settings:
    """URLs given on the command line or in ``ARTSTORE_*_URL`` (None: not given);
    ``url`` (``ARTSTORE_URL``) is the gateway's, for every service without its own."""

    url: str | None = None
    admin_url: str | None = None
    ingester_url: str | None = None
    query_url: str | None = None
    progress: bool = True


settings = Settings()


def store() -> CredentialStore:
    return CredentialStore()


def make_config(creds: Credentials | None, **extra: Any) -> ClientConfig:
    """Command line / environment first, then what `login` saved, then the defaults."""
    c = creds or Credentials()
    return ClientConfig(
        admin_url=settings.admin_url or settings.url or c.admin_url or DEFAULT_ADMIN_URL,
        ingester_url=(
            settings.ingester_url or settings.url or c.ingester_url or DEFAULT_INGESTER_URL
        ),
        query_url=settings.query_url or settings.url or c.query_url or DEFAULT_QUERY_URL,
        **extra,
    )


def client(auth: bool = True) -> Client:
    """A client carrying the saved login; refreshed tokens are saved back."""
    import os

    creds = store().load()
    env_token = os.environ.get(ENV_TOKEN)
    if env_token:  # a token handed in by a script wins and is never written anywhere
        return Client(make_config(creds, token=env_token))
    if creds is None or not creds.access_token:
        if auth:
            raise NotLoggedInError("not logged in; run `artstore login` first")
        return Client(make_config(creds))
    config = make_config(
        creds,
        token=creds.access_token,
        refresh_token=creds.refresh_token,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
    )

    def persist(tokens: TokenSet) -> None:
        creds.access_token = tokens.access_token
        if tokens.refresh_token:
            creds.refresh_token = tokens.refresh_token
        store().save(creds)

    return Client(config, on_tokens=persist)


# -- output -------------------------------------------------------------------------------
def dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(dump(value), indent=2, ensure_ascii=False, default=str))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    t = Table(title=title, show_edge=False, pad_edge=False)
    for name in columns:
        t.add_column(name, overflow="fold")
    for row in rows:
        t.add_row(*(escape(_cell(v)) for v in row))
    out.print(t)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    t = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for k, v in pairs:
        t.add_row(escape(k), escape(_cell(v)))
    out.print(t)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if hasattr(value, "isoformat"):
        return str(value.isoformat(timespec="seconds"))
    return str(value)


def note(message: str) -> None:
    """A human remark (not data): stderr, so stdout stays clean for pipes."""
    err.print(escape(message))


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


@contextmanager
def progress_bars() -> Iterator[Progress]:
    """Transfer bars on stderr; silent when stderr is not a terminal (logs, pipes)."""
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not (settings.progress and err.is_terminal),
    )
    with bars:
        yield bars
