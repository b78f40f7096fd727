"""``upload``, ``download``, ``search``, ``info``, ``ls``, ``rm``, ``link``, ``finalize``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from artstore.cli import runtime
from artstore.cli.app import error_line, fail
from artstore.client import UploadOptions
from artstore.client.credentials import config_dir
from artstore.client.errors import ArtStoreClientError
from artstore.client.models import FileMetadata

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


class Match(StrEnum):
    partial = "partial"
    exact = "exact"


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"{what} {item!r} is not KEY=VALUE", "USAGE", 2)
        result[key] = value
    return result


def _walk(paths: list[Path]) -> Iterator[tuple[Path, str | None]]:
    """Every file named or under a named folder (sorted), with its path relative to
    that folder (kept in the file's metadata as ``relative_path``)."""
    for path in paths:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    f = Path(root) / name
                    if f.is_file():
                        yield f, f.relative_to(path).as_posix()
        elif path.is_file():
            yield path, None
        else:
            fail(f"{path}: no such file or folder", "NOT_FOUND")


def _file_rows(items: list[FileMetadata], score: bool = False) -> None:
    columns = ["file_id", "filename", "size", "uploaded_at", "status", "retention", "tags"]
    if score:
        columns.append("score")
    rows: list[list[Any]] = []
    for m in items:
        row: list[Any] = [m.file_id, m.original_filename, runtime.human_size(m.size),
                          m.uploaded_at, m.status, m.retention_policy, m.tags]  # fmt: skip
        if score:
            row.append(f"{m.score:.3f}" if m.score is not None else None)
        rows.append(row)
    runtime.table(columns, rows)


def _page_note(total: int, shown: int, offset: int, has_more: bool) -> None:
    if has_more:
        runtime.note(f"{shown} of {total} shown (from {offset}); next: --offset {offset + shown}")


def upload(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (folders recurse)")],
    temporary: Annotated[
        bool, typer.Option("--temporary", help="Temporary file (edit SE, expires)")
    ] = False,
    permanent: Annotated[bool, typer.Option("--permanent", help="Permanent file (rw SE)")] = False,
    ttl: Annotated[
        int | None,
        typer.Option(
            "--ttl", min=1, max=3650, help="Days a temporary file lives (implies --temporary)"
        ),
    ] = None,
    description: Annotated[str | None, typer.Option(help="Description")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag (repeat)")] = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", "-m", help="Metadata KEY=VALUE (repeat)")
    ] = None,
    resumable: Annotated[
        bool, typer.Option(help="Use tus: resumable, continues where a failed run stopped")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Upload files (or whole folders) through the ingester, with progress bars."""
    if temporary and permanent:
        fail("--temporary and --permanent exclude each other", "USAGE", 2)
    if ttl is not None and permanent:
        fail("--ttl applies to temporary files only", "USAGE", 2)
    temporary = temporary or ttl is not None  # --ttl alone means a temporary file
    metadata = _pairs(meta, "--meta")
    files = list(_walk(paths))
    if not files:
        fail("nothing to upload (empty folders)", "NOT_FOUND")
    policy = "temporary" if temporary else "permanent" if permanent else None
    stored: list[FileMetadata] = []
    failed = 0
    with runtime.client() as c, runtime.progress_bars() as bars:
        for path, relative in files:
            opts = UploadOptions(
                description=description,
                tags=tag or [],
                metadata={**metadata, **({"relative_path": relative} if relative else {})},
                retention_policy=policy,
                ttl_days=ttl,
            )
            task = bars.add_task(path.name, total=path.stat().st_size)

            def advance(done: int, _total: int | None, task: Any = task) -> None:
                bars.update(task, completed=done)

            try:
                if resumable:
                    meta_ = c.upload_resumable(path, opts, progress=advance, state_dir=config_dir())
                else:
                    meta_ = c.upload(path, opts, progress=advance)
                stored.append(meta_)
            except ArtStoreClientError as exc:
                if len(files) == 1:
                    raise
                failed += 1
                print(error_line(f"{path}: {exc.message}", exc.code), file=sys.stderr)
            finally:
                bars.remove_task(task)
    if json_out:
        runtime.print_json(stored)
    elif stored:
        runtime.table(
            ["file_id", "filename", "size", "retention", "sha256"],
            [[m.file_id, m.original_filename, runtime.human_size(m.size), m.retention_policy,
              m.sha256[:16]] for m in stored],
        )  # fmt: skip
    if failed:
        raise typer.Exit(1)


def download(
    file_id: Annotated[str, typer.Argument(help="The file's id")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File or folder to write (default: its name here)"),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Download a file (progress bar); resumes a partial download; verifies SHA-256."""
    with runtime.client() as c:
        dest = output
        if dest is None or dest.is_dir():
            meta = c.get_file(file_id)
            name = Path(meta.original_filename).name or file_id
            dest = (dest or Path.cwd()) / name
        if dest.exists() and not force:
            fail(f"{dest} exists (use --force to overwrite)", "EXISTS")
        with runtime.progress_bars() as bars:
            task = bars.add_task(dest.name, total=None)

            def advance(done: int, total: int | None) -> None:
                bars.update(task, completed=done, total=total)

            result = c.download(file_id, dest, progress=advance)
    if json_out:
        runtime.print_json(result)
        return
    resumed = f", resumed at byte {result.resumed_from}" if result.resumed_from else ""
    typer.echo(f"{result.path}  {runtime.human_size(result.size)}  sha256:{result.sha256}{resumed}")


def search(
    query: Annotated[str | None, typer.Argument(help="Full-text query (ranked)")] = None,
    filename: Annotated[str | None, typer.Option(help="File name (see --match)")] = None,
    match: Annotated[Match, typer.Option(help="How --filename matches")] = Match.partial,
    ext: Annotated[str | None, typer.Option("--ext", help="File extension, e.g. pdf")] = None,
    content_type: Annotated[str | None, typer.Option(help="Content type")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Tag (all must match)")
    ] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", "-m", help="KEY=VALUE")] = None,
    uploaded_by: Annotated[str | None, typer.Option(help="Uploader")] = None,
    retention: Annotated[str | None, typer.Option(help="temporary or permanent")] = None,
    status: Annotated[str | None, typer.Option(help="active (default), expired, deleted")] = None,
    min_size: Annotated[int | None, typer.Option(help="Bytes")] = None,
    max_size: Annotated[int | None, typer.Option(help="Bytes")] = None,
    after: Annotated[str | None, typer.Option(help="Uploaded after (RFC 3339)")] = None,
    before: Annotated[str | None, typer.Option(help="Uploaded before (RFC 3339)")] = None,
    sort: Annotated[
        str | None, typer.Option(help="relevance, uploaded_at, original_filename, size")
    ] = None,
    order: Annotated[str | None, typer.Option(help="asc or desc")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Search files through the query service."""
    filters = {
        "query": query, "filename": filename, "match": match.value if filename else None,
        "file_extension": ext, "content_type": content_type, "tags": tag or None,
        "metadata": _pairs(meta, "--meta") or None, "uploaded_by": uploaded_by,
        "retention_policy": retention, "status": status, "min_size": min_size,
        "max_size": max_size, "uploaded_after": after, "uploaded_before": before,
        "sort_by": sort, "sort_order": order, "limit": limit, "offset": offset,
    }  # fmt: skip
    with runtime.client() as c:
        page = c.search(**filters)
    if json_out:
        runtime.print_json(page)
        return
    _file_rows(page.items, score=query is not None)
    _page_note(page.total, len(page.items), offset, page.has_more)


def info(
    file_id: Annotated[str, typer.Argument(help="The file's id")],
    json_out: JsonOpt = False,
) -> None:
    """A file's metadata and where its copies are."""
    with runtime.client() as c:
        m = c.get_file(file_id)
    if json_out:
        runtime.print_json(m)
        return
    runtime.fields(
        [
            ("file_id", m.file_id),
            ("filename", m.original_filename),
            ("content type", m.content_type),
            ("size", f"{m.size} ({runtime.human_size(m.size)})"),
            ("checksum", m.checksum),
            ("status", m.status),
            ("retention", m.retention_policy),
            ("expires at", m.expires_at),
            ("uploaded by", m.uploaded_by),
            ("uploaded at", m.uploaded_at),
            ("updated at", m.updated_at),
            ("version", m.version),
            ("description", m.description or None),
            ("tags", m.tags),
            ("metadata", m.metadata),
            ("copies", [f"{cp.storage_element_id} ({cp.status})" for cp in m.copies]),
        ]
    )


def ls(
    status: Annotated[str | None, typer.Option(help="active, expired or deleted")] = None,
    retention: Annotated[str | None, typer.Option(help="temporary or permanent")] = None,
    se: Annotated[
        str | None, typer.Option("--se", help="Only files with a copy on this SE")
    ] = None,
    uploaded_by: Annotated[str | None, typer.Option(help="Uploader")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonOpt = False,
) -> None:
    """List files, newest first (the admin's catalog view)."""
    with runtime.client() as c:
        page = c.list_files(status=status, retention_policy=retention, storage_element_id=se,
                            uploaded_by=uploaded_by, limit=limit, offset=offset)  # fmt: skip
    if json_out:
        runtime.print_json(page)
        return
    _file_rows(page.items)
    _page_note(page.total, len(page.items), offset, page.has_more)


def rm(
    file_ids: Annotated[list[str], typer.Argument(help="Ids of the files to delete")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
) -> None:
    """Delete files everywhere (every copy becomes a tombstone; GC reclaims them)."""
    if not yes and sys.stdin.isatty():
        typer.confirm(f"delete {len(file_ids)} file(s) on every storage element?", abort=True)
    failed = 0
    with runtime.client() as c:
        for fid in file_ids:
            try:
                c.delete_file(fid)
                typer.echo(f"deleted {fid}")
            except ArtStoreClientError as exc:
                if len(file_ids) == 1:
                    raise
                failed += 1
                print(error_line(f"{fid}: {exc.message}", exc.code), file=sys.stderr)
    if failed:
        raise typer.Exit(1)


def link(
    file_id: Annotated[str, typer.Argument(help="The file's id")],
    expires_in: Annotated[
        int | None, typer.Option(min=1, max=604800, help="Seconds (default 3600)")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """A download link that needs no token, valid for a while."""
    with runtime.client() as c:
        result = c.create_link(file_id, expires_in)
    if json_out:
        runtime.print_json(result)
    else:
        typer.echo(result.url)
        runtime.note(f"expires at {result.expires_at.isoformat(timespec='seconds')}")


def finalize(
    file_id: Annotated[str, typer.Argument(help="Id of a temporary file")],
    json_out: JsonOpt = False,
) -> None:
    """Make a temporary file permanent (copied to rw storage under the same id)."""
    with runtime.client() as c:
        m = c.finalize(file_id)
    if json_out:
        runtime.print_json(m)
    else:
        typer.echo(f"{m.file_id} is {m.retention_policy}")


def register(app: typer.Typer) -> None:
    for fn in (upload, download, search, info, ls, rm, link, finalize):
        app.command()(fn)
