"""``artstore se ...``: the SE registry (through the admin) and maintenance (on the SE
itself, at the URL the registry gives, with the caller's token)."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from artstore.cli import runtime
from artstore.cli.app import fail
from artstore.client.errors import (
    ApiError,
    ArtStoreClientError,
    ConflictError,
    ServiceConnectionError,
)
from artstore.client.models import StorageElement

app = typer.Typer(help="Storage elements: registry, modes and maintenance.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
SEId = Annotated[str, typer.Argument(help="The SE's storage id")]


class Mode(StrEnum):
    edit = "edit"
    rw = "rw"
    ro = "ro"
    ar = "ar"


def _capacity(se: StorageElement) -> str:
    cap = se.capacity
    return f"{runtime.human_size(cap.used_bytes)} / {runtime.human_size(cap.total_bytes)}"


@app.command("list")
def list_(
    mode: Annotated[Mode | None, typer.Option(help="Only this mode")] = None,
    status: Annotated[
        str | None, typer.Option(help="online, degraded, offline, maintenance")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Registered storage elements with mode, status and capacity."""
    with runtime.client() as c:
        page = c.list_storage_elements(mode=mode.value if mode else None, status=status,
                                       limit=1000)  # fmt: skip
    if json_out:
        runtime.print_json(page.items)
        return
    runtime.table(
        ["storage_id", "mode", "status", "backend", "used / total", "files", "url"],
        [[s.storage_id, s.mode, s.status, s.backend, _capacity(s), s.capacity.file_count, s.url]
         for s in page.items],
    )  # fmt: skip


@app.command()
def info(storage_id: SEId, json_out: JsonOpt = False) -> None:
    """Registry entry plus the SE's own /info and maintenance status (when reachable)."""
    with runtime.client() as c:
        item = c.get_storage_element(storage_id)
        live: dict[str, Any] = {}
        try:
            live["info"] = c.se_info(storage_id)
            live["maintenance"] = c.se_status(storage_id)
        except ArtStoreClientError as exc:
            live["unreachable"] = exc.one_line()
    if json_out:
        runtime.print_json({"registry": item, **live})
        return
    pairs: list[tuple[str, Any]] = [
        ("storage_id", item.storage_id),
        ("name", item.name),
        ("url", item.url),
        ("mode", item.mode),
        ("status", item.status),
        ("backend", item.backend),
        ("capacity", f"{_capacity(item)}, {item.capacity.file_count} files"),
        ("last seen", item.last_seen_at),
    ]
    if "info" in live:
        pairs.append(("allowed operations", live["info"].allowed_operations))
    m = live.get("maintenance")
    if isinstance(m, dict):
        pairs += [
            ("wal pending", m.get("wal", {}).get("pending")),
            ("catalog", m.get("catalog", {})),
            ("rebuild", m.get("rebuild", {}).get("state")),
            ("last gc", m.get("gc")),
        ]
    if "unreachable" in live:
        pairs.append(("live status", live["unreachable"]))
    runtime.fields(pairs)


# Answers worth waiting out at start-up: the admin or the SE not (yet) reachable.
_NOT_YET = (502, 503, 504)


def _not_yet(exc: ArtStoreClientError) -> bool:
    return isinstance(exc, ServiceConnectionError) or (
        isinstance(exc, ApiError) and exc.status in _NOT_YET
    )


def _known_id(exc: ArtStoreClientError) -> str | None:
    """The registered id a 409 "already registered" names, else None."""
    if not isinstance(exc, ConflictError) or not isinstance(exc.details, dict):
        return None
    known = exc.details.get("registered_as")
    return known if isinstance(known, str) and known else None


@app.command()
def register(
    url: Annotated[str, typer.Argument(help="The SE's base URL")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    storage_id: Annotated[
        str | None,
        typer.Option(help="The id the SE at URL must answer with (refused otherwise)"),
    ] = None,
    exist_ok: Annotated[
        bool, typer.Option(help="Already registered (same url and id) is success")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to keep retrying while the admin or the SE is unreachable"),
    ] = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Add a storage element to the registry (the admin reads its /info).

    An SE's start-up registration (docker-compose.yml's `register`, the Kubernetes SE
    pods' `register` container) runs `--exist-ok --wait N` with the SE's own id.
    """
    deadline = time.monotonic() + max(wait, 0.0)
    with runtime.client() as c:
        while True:
            try:
                se = c.register_storage_element(url, name, storage_id)
                break
            except ArtStoreClientError as exc:
                known = _known_id(exc) if exist_ok else None
                if known is not None and storage_id in (None, known):
                    # This very SE (same id at the same url) was registered before.
                    entry = c.get_storage_element(known)
                    if entry.url.rstrip("/") == url.rstrip("/"):
                        typer.echo(f"already registered: {known} at {entry.url}")
                        return
                if not _not_yet(exc) or time.monotonic() >= deadline:
                    raise
                runtime.note(f"not yet: {exc.one_line()}; retrying")
                time.sleep(min(2.0, max(deadline - time.monotonic(), 0.1)))
    if json_out:
        runtime.print_json(se)
    else:
        typer.echo(f"registered {se.storage_id} ({se.mode}) at {se.url}")


@app.command()
def remove(storage_id: SEId) -> None:
    """Remove a storage element from the registry (its files stay on it)."""
    with runtime.client() as c:
        c.delete_storage_element(storage_id)
    typer.echo(f"removed {storage_id} from the registry")


@app.command()
def mode(
    storage_id: SEId,
    target: Annotated[Mode, typer.Argument(help="rw→ro, ro→ar, ro→rw (needs --confirm)")],
    confirm: Annotated[bool, typer.Option(help="Confirm ro→rw")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Change an SE's mode (through the admin, which records it in the audit log)."""
    with runtime.client() as c:
        result = c.change_mode(storage_id, target.value, confirm)
    if json_out:
        runtime.print_json(result)
    else:
        typer.echo(f"{storage_id}: {result.previous_mode} -> {result.current_mode}")


@app.command()
def reconcile(
    storage_id: SEId,
    deep: Annotated[bool, typer.Option(help="Re-hash every blob (slow)")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Compare attr files, blobs and catalog on one SE; fix the catalog, quarantine damage."""
    with runtime.client() as c:
        report = c.reconcile(storage_id, deep)
    if json_out:
        runtime.print_json(report)
        return
    typer.echo(f"{storage_id}: {report.files_checked} files checked, {len(report.issues)} issues")
    if report.issues:
        runtime.table(["kind", "file_id", "path", "action"],
                      [[i.kind, i.file_id, i.path, i.action] for i in report.issues])  # fmt: skip


@app.command()
def gc(storage_id: SEId, json_out: JsonOpt = False) -> None:
    """Expire temporary files past their time and reclaim old tombstones on one SE."""
    with runtime.client() as c:
        result = c.gc(storage_id)
    if json_out:
        runtime.print_json(result)
    else:
        typer.echo(f"{storage_id}: {result.expired} expired, {result.reclaimed} reclaimed, "
                   f"{runtime.human_size(result.bytes_freed)} freed")  # fmt: skip


@app.command()
def status(storage_id: SEId) -> None:
    """The SE's maintenance status (WAL, catalog, GC, scrubber, rebuild) as JSON."""
    with runtime.client() as c:
        runtime.print_json(c.se_status(storage_id))


@app.command("rebuild-index")
def rebuild_index(
    online: Annotated[
        str | None,
        typer.Option(
            "--online",
            metavar="STORAGE_ID",
            help="Ask this running SE (by storage id) to rebuild its rows",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="With --online: wait until the job ends")] = False,
    data_dir: Annotated[
        str | None, typer.Option(help="Offline: the SE's data directory (SE_DATA_DIR)")
    ] = None,
    se_id: Annotated[
        str | None, typer.Option("--se-id", help="Offline: the SE's storage id (SE_ID)")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(envvar="DATABASE_URL", help="Offline: PostgreSQL URL")
    ] = None,
) -> None:
    """Rebuild an SE's catalog rows from its attr files.

    Offline (--data-dir, --se-id, DATABASE_URL; the SE may be stopped) reads the files
    directly. --online STORAGE_ID asks the running SE to do it (a background job).
    Other backend settings (SE_BACKEND, SE_S3_*) are read from the environment.
    """
    if online is not None:
        if data_dir or se_id:
            fail("--online excludes --data-dir/--se-id", "USAGE", 2)
        _rebuild_online(online, wait)
        return
    missing = [n for n, v in (("--data-dir", data_dir), ("--se-id", se_id),
                              ("--database-url", database_url)) if not v]  # fmt: skip
    if missing:
        fail(f"missing option {', '.join(missing)} (or use --online STORAGE_ID)", "USAGE", 2)
    assert data_dir and se_id and database_url
    _rebuild_offline(data_dir, se_id, database_url)


def _rebuild_online(storage_id: str, wait: bool) -> None:
    with runtime.client() as c:
        job = c.rebuild_index(storage_id)
        if not wait:
            typer.echo(f"{storage_id}: rebuild started (job {job.job_id}); "
                       f"see `artstore se status {storage_id}`")  # fmt: skip
            return
        while True:
            rebuild = c.se_status(storage_id).get("rebuild", {})
            if rebuild.get("job_id") == job.job_id and rebuild.get("state") in ("done", "failed"):
                break
            time.sleep(0.5)
    if rebuild["state"] == "failed":
        fail(f"{storage_id}: rebuild failed: {rebuild.get('error')}", "REBUILD_FAILED")
    typer.echo(f"{storage_id}: {rebuild.get('done')} catalog rows rebuilt from attr files")
    for file_id in rebuild.get("refused_file_ids") or []:
        typer.echo(f"refused by the catalog: {file_id}")


def _rebuild_offline(data_dir: str, se_id: str, database_url: str) -> None:
    from artstore.cli import services
    from artstore.common.errors import NotFound

    try:
        entry = services.storage_element()
    except LookupError as exc:
        fail(str(exc), "NOT_INSTALLED")
    t0 = time.perf_counter()
    try:
        result = entry.rebuild_index_offline(data_dir, se_id, database_url)
    except NotFound as exc:
        fail(exc.message, exc.code, 2)
    typer.echo(f"{se_id}: {result.written} catalog rows rebuilt from attr files "
               f"({result.bad} unreadable, {len(result.refused)} refused by the catalog) "
               f"in {time.perf_counter() - t0:.2f} s")  # fmt: skip
    # Rows PostgreSQL refused for their data (a NUL...): named so they can be fixed.
    for file_id, reason in result.refused.items():
        typer.echo(f"refused: {file_id} ({reason})")
