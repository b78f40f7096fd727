"""The layers, read from the source: ``lib`` never imports a service, nothing but the CLI
imports the CLI, no service imports another service, and every service is declared as
an ``artstore.services`` entry point (how the CLI finds it without importing it)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib" / "artstore"


def _services() -> dict[str, Path]:
    """Service package name (``storage_element``) -> its folder, for every top-level
    folder holding an ``artstore/<package>`` (lib excluded)."""
    found = {
        init.parent.name: init.parent
        for init in ROOT.glob("*/artstore/*/__init__.py")
        if init.parents[2] != ROOT / "lib"
    }
    assert {"storage_element", "admin", "ingester", "query", "worker"} <= set(found), found
    return found


SERVICES = _services()


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, with its line: ``import``/``from`` statements
    (``from artstore import admin`` counts as ``artstore.admin``) and
    ``importlib.import_module``/``__import__`` calls with a literal name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            if node.module == "artstore":  # `from artstore import admin`
                out += [(node.lineno, f"artstore.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args:
            func, first = node.func, node.args[0]
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
                out.append((node.lineno, str(first.value)))
    return out


def offending(folder: Path, forbidden: set[str]) -> list[str]:
    """``file:line module`` for every import under ``folder`` of a ``forbidden`` package
    (``artstore.<name>`` or below)."""
    bad = []
    for path in sorted(folder.rglob("*.py")):
        for line, module in imported_modules(path):
            parts = module.split(".")
            if len(parts) >= 2 and parts[0] == "artstore" and parts[1] in forbidden:
                bad.append(f"{path.relative_to(folder)}:{line} {module}")
    return bad


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import artstore.admin.main\n"
        "from artstore.query import settings\n"
        "from artstore import ingester\n"
        "def f():\n"
        "    import importlib\n"
        "    importlib.import_module('artstore.storage_element.settings')\n"
        "    from artstore.common import errors\n"
        "    from . import admin  # relative: inside its own package\n"
    )
    assert offending(tmp_path, set(SERVICES)) == [
        "m.py:1 artstore.admin.main",
        "m.py:2 artstore.query",
        "m.py:3 artstore.ingester",
        "m.py:6 artstore.storage_element.settings",
    ]


def test_lib_imports_no_service() -> None:
    assert offending(LIB, set(SERVICES)) == [], (
        "lib must not import a service: expose what it needs through the service's "
        'entrypoint module (pyproject.toml [project.entry-points."artstore.services"])'
    )


BELOW_THE_CLI = sorted(
    p.name for p in LIB.iterdir() if (p / "__init__.py").is_file() and p.name != "cli"
)


@pytest.mark.parametrize("package", BELOW_THE_CLI)
def test_the_cli_is_the_top_of_lib(package: str) -> None:
    """``common``, ``client`` and ``contracts`` are what the services build on: the CLI
    (which runs the services) may import them, never the other way round."""
    assert offending(LIB / package, {"cli"}) == []


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_imports_no_other_service_and_not_the_cli(service: str) -> None:
    others = (set(SERVICES) - {service}) | {"cli"}
    assert offending(SERVICES[service], others) == []


def test_every_service_is_an_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"]["artstore.services"]
    # serve name -> module: each names an existing module of a distinct service package
    packages = set()
    for name, target in declared.items():
        parts = target.split(".")
        assert parts[0] == "artstore" and parts[1] in SERVICES, (name, target)
        assert SERVICES[parts[1]].joinpath(*parts[2:]).with_suffix(".py").is_file(), target
        packages.add(parts[1])
    assert packages == set(SERVICES)
