"""Metadata reads: the catalog first, the attr files when the catalog cannot answer."""

from __future__ import annotations

import asyncio
import logging

from artstore.storage_element.attr.model import Attr
from artstore.storage_element.catalog.sync import CATALOG_ERRORS
from artstore.storage_element.state import SEState

log = logging.getLogger("artstore.storage_element.files")


async def metadata(node: SEState, file_id: str) -> Attr:
    repo = node.catalog.repo
    if repo is not None and node.catalog.reachable and not node.catalog.owes(file_id):
        try:
            # asyncio.timeout, not wait_for: no task per read (issue 19).
            async with asyncio.timeout(node.settings.catalog_timeout):
                row = await repo.get(file_id)
        except CATALOG_ERRORS as exc:
            log.warning("catalog read failed, reading the attr: %s", exc)
        else:
            if row is not None:
                return row
    return await node.get_attr(file_id)


async def list_files(
    node: SEState, statuses: list[str], limit: int, offset: int
) -> tuple[list[Attr], int]:
    repo = node.catalog.repo
    if repo is not None and node.catalog.reachable and not node.catalog.owed:
        try:
            return await asyncio.wait_for(
                repo.list(statuses, limit, offset), node.settings.catalog_timeout
            )
        except CATALOG_ERRORS as exc:
            log.warning("catalog list failed, scanning attr files: %s", exc)
    return await asyncio.to_thread(_scan, node, statuses, limit, offset)


def _scan(node: SEState, statuses: list[str], limit: int, offset: int) -> tuple[list[Attr], int]:
    found = []
    for path in node.index.all_paths():
        attr = node.read_attr_sync(path)
        if attr is not None and attr.status in statuses:
            found.append(attr)
    found.sort(key=lambda a: (a.uploaded_at, a.file_id), reverse=True)
    return found[offset : offset + limit], len(found)
