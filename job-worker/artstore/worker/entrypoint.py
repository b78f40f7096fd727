"""What the ``artstore`` command needs from the job worker.

Found through the ``artstore.services`` entry point (pyproject.toml), so ``lib`` never
imports this package; imports stay inside the functions to keep ``artstore --help`` fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from pydantic_settings import BaseSettings

TITLE = "Job worker"


def settings_class() -> type[BaseSettings]:
    from artstore.worker.settings import WorkerSettings

    return WorkerSettings


def make_app(port: int | None) -> tuple[FastAPI, str, int]:
    """The app built from the environment, with the host and port it listens on."""
    from artstore.worker.main import create_app
    from artstore.worker.settings import WorkerSettings

    settings = WorkerSettings()
    return create_app(settings), settings.host, port or settings.port
