"""``artstore preview FILE_ID -o x.webp``: a file's preview (docs/previews.md), and
``artstore preview-backfill``: queue previews for every existing file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from artstore.cli import runtime
from artstore.cli.app import fail
from artstore.client.previews import get_preview

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]
PREVIEW_BACKFILL = "preview.backfill"  # the worker's job kind


def _write(dest: Path, data: bytes) -> None:
    """Whole or not at all: a temporary file next to ``dest``, then renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def preview(
    file_id: Annotated[str, typer.Argument(help="The file's id")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="File to write (default: FILE_ID-SIZE.webp or .jpg here)"
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(help="Longest side (px), one the query module serves (default: smallest)"),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Save a file's preview image (files:read). Fails with PREVIEW_PENDING while it is
    not made yet and NO_PREVIEW when none can be made."""
    if output is not None and output.exists() and not output.is_file():
        fail(f"{output} is not a file", "EXISTS")
    if output is not None and output.exists() and not force:
        fail(f"{output} exists (use --force to overwrite)", "EXISTS")
    with runtime.client() as c:
        got = c.call(get_preview(file_id, size))
    if not got.ready:
        later = f"; try again in {got.retry_after} s" if got.retry_after else ""
        fail(f"the preview of {file_id} is not made yet{later}", "PREVIEW_PENDING")
    dest = output or Path.cwd() / f"{file_id}-{size or 'preview'}{got.extension}"
    if output is None and dest.exists() and not force:
        fail(f"{dest} exists (use --force to overwrite)", "EXISTS")
    _write(dest, got.content)
    if json_out:
        runtime.print_json(
            {"path": str(dest), "bytes": len(got.content), "content_type": got.content_type,
             "etag": got.etag}
        )  # fmt: skip
        return
    typer.echo(f"{dest}  {runtime.human_size(len(got.content))}  {got.content_type}")


def preview_backfill(
    database_url: Annotated[str, typer.Option(envvar="DATABASE_URL", help="PostgreSQL URL")],
) -> None:
    """Queue a `preview.backfill` job: previews for every existing file that lacks one
    (the worker runs it; its run shows in `artstore jobs list --kind preview.backfill`)."""
    import asyncio

    from artstore.common.db import make_engine
    from artstore.jobs.defer import defer_job
    from artstore.jobs.queue import make_queue

    async def go() -> int | None:
        queue = make_queue(database_url, pool_size=1)
        engine = make_engine(database_url, pool_size=1)
        await queue.open_async()
        try:
            return await defer_job(
                queue, engine, PREVIEW_BACKFILL, args={}, requested_by="cli",
                dedupe=PREVIEW_BACKFILL,
            )  # fmt: skip
        finally:
            await queue.close_async()
            await engine.dispose()

    run_id = asyncio.run(go())
    if run_id is None:
        typer.echo("a preview.backfill job is already queued")
    else:
        typer.echo(f"preview.backfill queued as job {run_id}")


def register(app: typer.Typer) -> None:
    app.command()(preview)
    app.command("preview-backfill")(preview_backfill)
