"""How the ``artstore`` command finds the services: the ``artstore.services`` entry points
of the installed package metadata (``make install``), never an import of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from artstore.cli import services
from artstore.common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTSTORE_")}
    return subprocess.run(
        [sys.executable, "-m", "artstore.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_five_services_are_installed_entry_points() -> None:
    assert services.names() == ["admin", "storage-element", "ingester", "query", "worker"]
    assert list(services.installed()) == services.names()


@pytest.mark.parametrize("name", ["admin", "storage-element", "ingester", "query", "worker"])
def test_an_entry_builds_its_app_from_the_environment(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    for var in ("SE_DATA_DIR", "AM_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var))
    entry = services.load(name)
    settings_class = entry.settings_class()
    assert issubclass(settings_class, ServiceSettings)
    assert entry.TITLE

    app, _, port = entry.make_app(None)
    assert isinstance(app, FastAPI)
    assert port == settings_class().port  # type: ignore[attr-defined]
    _, _, port = entry.make_app(18123)
    assert port == 18123


def test_an_unknown_service_is_a_lookup_error_naming_the_installed_ones() -> None:
    with pytest.raises(LookupError, match=r"unknown service 'nope'.*admin, storage-element"):
        services.load("nope")


def test_discovery_reads_the_metadata_of_any_installed_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package on the path declaring the group is found; one whose module is missing
    is named but left out of ``installed()``."""
    dist = tmp_path / "artstore_extra-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: artstore-extra\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[artstore.services]\nextra = extra_service\nghost = no_such_module_here\n"
    )
    (tmp_path / "extra_service.py").write_text(
        'TITLE = "Extra"\n'
        "def settings_class():\n"
        "    from artstore.common.settings import ServiceSettings\n"
        "    return ServiceSettings\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert services.names()[-2:] == ["extra", "ghost"]
    assert services.load("extra").TITLE == "Extra"
    assert "ghost" not in services.installed()
    with pytest.raises(ModuleNotFoundError):
        services.load("ghost")


def test_serve_names_the_installed_services_for_an_unknown_one(tmp_path: Path) -> None:
    p = run_cli("serve", "nope", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    (line,) = p.stderr.strip().splitlines()
    installed = "admin, storage-element, ingester, query, worker"
    assert f"unknown service 'nope' (installed: {installed})" in line
    assert line.startswith("error: ") and line.endswith("(USAGE)")


def test_offline_rebuild_of_a_folder_without_files_is_refused(tmp_path: Path) -> None:
    """The SE's entry checks the data dir before touching the database."""
    empty = tmp_path / "empty"
    empty.mkdir()
    p = run_cli(
        "se",
        "rebuild-index",
        "--data-dir",
        str(empty),
        "--se-id",
        "se-x",
        "--database-url",
        "postgresql://nobody@127.0.0.1:1/none",
        cwd=tmp_path,
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == f"error: {empty} holds no files/ folder (NOT_FOUND)"
