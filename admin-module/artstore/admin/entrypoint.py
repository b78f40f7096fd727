"""What the ``artstore`` command needs from the admin module.

Found through the ``artstore.services`` entry point (pyproject.toml), so ``lib`` never
imports this package; imports stay inside the functions to keep ``artstore --help`` fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from pydantic_settings import BaseSettings

TITLE = "Admin module"


def settings_class() -> type[BaseSettings]:
    from artstore.admin.settings import AMSettings

    return AMSettings


def make_app(port: int | None) -> tuple[FastAPI, str, int]:
    """The app built from the environment, with the host and port it listens on."""
    from artstore.admin.main import create_app
    from artstore.admin.settings import AMSettings

    settings = AMSettings()
    return create_app(settings), settings.host, port or settings.port
