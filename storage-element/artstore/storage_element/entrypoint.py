"""What the ``artstore`` command needs from the storage element.

Found through the ``artstore.services`` entry point (pyproject.toml), so ``lib`` never
imports this package; imports stay inside the functions to keep ``artstore --help`` fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from pydantic_settings import BaseSettings

    from artstore.storage_element.maintenance.rebuild import RebuildResult

TITLE = "Storage element"


def settings_class() -> type[BaseSettings]:
    from artstore.storage_element.settings import SESettings

    return SESettings


def make_app(port: int | None) -> tuple[FastAPI, str, int]:
    """The app built from the environment, with the host and port it listens on."""
    from artstore.storage_element.main import create_app
    from artstore.storage_element.settings import SESettings

    settings = SESettings()
    return create_app(settings), settings.host, port or settings.port


def rebuild_index_offline(data_dir: str, se_id: str, database_url: str) -> RebuildResult:
    """``artstore se rebuild-index`` without a running SE: the catalog rows from the attr
    files. ``NotFound`` when a local data dir holds no ``files/`` folder."""
    import asyncio

    from artstore.common.errors import NotFound
    from artstore.storage_element.backends import make_backend
    from artstore.storage_element.layout import Layout
    from artstore.storage_element.maintenance.rebuild import rebuild_offline
    from artstore.storage_element.settings import SESettings

    settings = SESettings(id=se_id, data_dir=data_dir)
    if settings.backend == "local" and not (settings.data_dir / "files").is_dir():
        raise NotFound(f"{settings.data_dir} holds no files/ folder")
    backend = make_backend(settings, Layout(settings.data_dir, settings.wal_dir))
    return asyncio.run(rebuild_offline(backend, database_url, se_id))
