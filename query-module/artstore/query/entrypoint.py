"""What the ``artstore`` command needs from the query module.

Found through the ``artstore.services`` entry point (pyproject.toml), so ``lib`` never
imports this package; imports stay inside the functions to keep ``artstore --help`` fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from pydantic_settings import BaseSettings

TITLE = "Query module"


def settings_class() -> type[BaseSettings]:
    from artstore.query.settings import QMSettings

    return QMSettings


def make_app(port: int | None) -> tuple[FastAPI, str, int]:
    """The app built from the environment, with the host and port it listens on."""
    from artstore.query.main import create_app
    from artstore.query.settings import QMSettings

    # The listening port also names the links' default base URL (QM_PUBLIC_URL).
    settings = QMSettings() if port is None else QMSettings(port=port)
    return create_app(settings), settings.host, port or settings.port
