"""The services the ``artstore`` command can run, found through entry points.

``lib`` never imports a service package: each service declares a small module in the
``artstore.services`` entry-point group of pyproject.toml (``name = "artstore.<pkg>.entrypoint"``)
and the CLI loads it by name. ``pip install -e .`` (``make install``) writes the group into the
package metadata; a service whose package or dependencies are missing is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from fastapi import FastAPI
    from pydantic_settings import BaseSettings

GROUP = "artstore.services"
# The order of `artstore serve --help` and of the README's settings table.
ORDER = ("admin", "storage-element", "ingester", "query", "worker")


class ServiceEntry(Protocol):
    """What every service's entry-point module provides."""

    TITLE: str  # "Storage element"

    def settings_class(self) -> type[BaseSettings]: ...

    def make_app(self, port: int | None) -> tuple[FastAPI, str, int]:
        """The app built from the environment, its host, and its port (``port`` wins)."""
        ...


class RebuildOutcome(Protocol):
    written: int
    bad: int
    refused: Mapping[str, str]


class StorageElementEntry(ServiceEntry, Protocol):
    """The storage element's entry also runs its offline maintenance."""

    def rebuild_index_offline(
        self, data_dir: str, se_id: str, database_url: str
    ) -> RebuildOutcome: ...


def names() -> list[str]:
    """The declared service names (nothing imported), in ``ORDER`` then by name."""
    found = {ep.name for ep in entry_points(group=GROUP)}
    return sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def load(name: str) -> ServiceEntry:
    """The entry of service ``name``; ``LookupError`` if no installed package declares it."""
    matches = entry_points(group=GROUP, name=name)
    if not matches:
        known = ", ".join(names()) or "none (run `make install`)"
        raise LookupError(f"unknown service {name!r} (installed: {known})")
    return cast(ServiceEntry, next(iter(matches)).load())


def installed() -> dict[str, ServiceEntry]:
    """Every service whose package imports, in ``names()`` order."""
    out: dict[str, ServiceEntry] = {}
    for name in names():
        try:
            out[name] = load(name)
        except ModuleNotFoundError:
            continue
    return out


def storage_element() -> StorageElementEntry:
    return cast(StorageElementEntry, load("storage-element"))
