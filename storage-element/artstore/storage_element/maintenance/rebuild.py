"""rebuild-index: this SE's catalog rows from its attr files alone (DESIGN §5.6)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from artstore.storage_element.attr.model import Attr, BadAttr, decode
from artstore.storage_element.backends.base import Backend
from artstore.storage_element.catalog.repository import CatalogRepository
from artstore.storage_element.files.index import attr_storage_path
from artstore.storage_element.node import StorageNode

log = logging.getLogger("artstore.storage_element.rebuild")

BATCH = 500

Progress = Callable[[int, int], None]


def attr_paths(backend: Backend) -> list[str]:
    return sorted(p for rel, _ in backend.walk() if (p := attr_storage_path(rel)) is not None)


def _decode_batch(backend: Backend, paths: list[str]) -> tuple[list[Attr], int]:
    good, bad = [], 0
    for path in paths:
        try:
            good.append(decode(backend.read_attr(path)))
        except (FileNotFoundError, BadAttr):
            bad += 1  # gone meanwhile, or damaged: reconcile reports and quarantines it
    return good, bad


async def rebuild(
    backend: Backend, repo: CatalogRepository, progress: Progress | None = None
) -> tuple[int, int]:
    """Replace this SE's rows with what its attrs say. Returns (rows written, bad attrs)."""
    paths = await asyncio.to_thread(attr_paths, backend)
    attrs: list[Attr] = []
    bad = 0
    for i in range(0, len(paths), BATCH):
        good, failed = await asyncio.to_thread(_decode_batch, backend, paths[i : i + BATCH])
        attrs += good
        bad += failed
        if progress:
            progress(min(i + BATCH, len(paths)), len(paths))
    await repo.replace_all(attrs)
    return len(attrs), bad


def start_rebuild(node: StorageNode) -> str:
    """Start the online job (202); progress and outcome in maintenance status."""
    repo = node.catalog.repo
    if repo is None:
        from artstore.common.errors import ServiceUnavailable

        raise ServiceUnavailable("no catalog configured (DATABASE_URL is empty)")
    node.maintenance.claim("rebuild-index")
    state = node.maintenance.rebuild
    state.job_id, state.state, state.done, state.total, state.error = (
        uuid.uuid4().hex,
        "running",
        0,
        0,
        None,
    )

    def progress(done: int, total: int) -> None:
        state.done, state.total = done, total

    async def job() -> None:
        try:
            written, bad = await rebuild(node.backend, repo, progress)
        except Exception as exc:
            state.state, state.error = "failed", str(exc) or type(exc).__name__
            log.exception("rebuild-index failed")
            return
        finally:
            node.maintenance.release("rebuild-index")
        state.state = "done"
        log.info("rebuild-index done", extra={"fields": {"rows": written, "bad_attrs": bad}})

    node.background(job())
    return state.job_id
