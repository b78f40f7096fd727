"""se list|info|register|remove|mode|reconcile|gc|status|rebuild-index against real SEs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Cli, SystemUnderTest
from tests.support.se import StorageElementUnderTest


@pytest.fixture
def spare_rw(sut: SystemUnderTest) -> Iterator[StorageElementUnderTest]:
    """An rw SE of its own (mode changes must not disturb the shared ones); not
    registered: the test registers it through the CLI."""
    se = sut.system.add_se("rw", register=False)
    yield se
    se.process.stop()


def test_list_and_info(admin_cli: Cli, sut: SystemUnderTest) -> None:
    items = json.loads(admin_cli.ok("se", "list", "--json").out)
    ids = {i["storage_id"]: i for i in items}
    assert ids[sut.edit.id]["mode"] == "edit" and ids[sut.rw.id]["mode"] == "rw"
    table = admin_cli.ok("se", "list").out
    assert sut.edit.id in table and sut.rw.id in table
    only_rw = json.loads(admin_cli.ok("se", "list", "--mode", "rw", "--json").out)
    assert sut.rw.id in {i["storage_id"] for i in only_rw}
    assert sut.edit.id not in {i["storage_id"] for i in only_rw}

    info = json.loads(admin_cli.ok("se", "info", sut.edit.id, "--json").out)
    assert info["registry"]["url"] == sut.edit.url
    assert "upload" in info["info"]["allowed_operations"]
    assert "wal" in info["maintenance"]
    assert "allowed operations" in admin_cli.ok("se", "info", sut.rw.id).out
    status = json.loads(admin_cli.ok("se", "status", sut.rw.id).out)
    assert status["rebuild"]["state"] in ("idle", "done")


def test_unknown_se(admin_cli: Cli) -> None:
    for args in (["info"], ["mode", "-", "ro"], ["reconcile"], ["gc"], ["status"], ["remove"]):
        cmd = [args[0], "se-nope", *args[2:]]
        admin_cli("se", *cmd).one_error_line("NOT_FOUND")
    admin_cli("se", "rebuild-index", "--online", "se-nope").one_error_line("NOT_FOUND")


def test_register_mode_and_remove(admin_cli: Cli, spare_rw: StorageElementUnderTest) -> None:
    out = admin_cli.ok("se", "register", spare_rw.url).out
    assert spare_rw.id in out
    admin_cli("se", "register", spare_rw.url).one_error_line("CONFLICT")

    assert "rw -> ro" in admin_cli.ok("se", "mode", spare_rw.id, "ro").out
    line = admin_cli("se", "mode", spare_rw.id, "rw").one_error_line("CONFIRMATION_REQUIRED")
    assert "confirm" in line
    back = json.loads(admin_cli.ok("se", "mode", spare_rw.id, "rw", "--confirm", "--json").out)
    assert back["previous_mode"] == "ro" and back["current_mode"] == "rw"
    admin_cli("se", "mode", spare_rw.id, "edit").one_error_line("INVALID_TRANSITION")

    admin_cli.ok("se", "remove", spare_rw.id)
    admin_cli("se", "info", spare_rw.id).one_error_line("NOT_FOUND")


def test_register_unreachable(admin_cli: Cli, dead_url: str) -> None:
    admin_cli("se", "register", dead_url).one_error_line("UPSTREAM_UNAVAILABLE")


def test_reconcile_counts_the_files_it_checked(admin_cli: Cli, sut: SystemUnderTest) -> None:
    """On an SE of its own (the shared ones hold what other tests uploaded), so the
    count is known: every file uploaded, the deleted one included."""
    se = sut.system.add_se("edit")
    try:
        with se.client() as c:
            ids = []
            for i in range(3):
                r = c.post("/api/v1/files", content=b"x" * (i + 1), params={"filename": f"{i}"})
                assert r.status_code == 201, r.text
                ids.append(r.json()["file_id"])
            assert c.delete(f"/api/v1/files/{ids[0]}").status_code == 204
        report = json.loads(admin_cli.ok("se", "reconcile", se.id, "--json").out)
        assert report["issues"] == []
        assert report["files_checked"] == 3
    finally:
        se.process.stop()


def test_maintenance(admin_cli: Cli, sut: SystemUnderTest) -> None:
    report = json.loads(admin_cli.ok("se", "reconcile", sut.edit.id, "--json").out)
    assert report["issues"] == []
    assert "files checked" in admin_cli.ok("se", "reconcile", sut.edit.id, "--deep").out
    gc = json.loads(admin_cli.ok("se", "gc", sut.edit.id, "--json").out)
    assert set(gc) >= {"expired", "reclaimed", "bytes_freed"}
    assert "reclaimed" in admin_cli.ok("se", "gc", sut.rw.id).out
    out = admin_cli.ok("se", "rebuild-index", "--online", sut.rw.id, "--wait").out
    assert "catalog rows rebuilt" in out
    assert "rebuild started" in admin_cli.ok("se", "rebuild-index", "--online", sut.edit.id).out


def test_se_down(admin_cli: Cli, sut: SystemUnderTest) -> None:
    se = sut.system.add_se("rw")  # registered, then stopped
    se.process.stop()
    for cmd in ("reconcile", "gc", "status"):
        line = admin_cli("se", cmd, se.id).one_error_line("CONNECTION_FAILED")
        assert se.url in line
    info = json.loads(admin_cli.ok("se", "info", se.id, "--json").out)
    assert "CONNECTION_FAILED" in info["unreachable"]  # the registry entry still shows


def test_admin_down(admin_cli: Cli, dead_url: str, sut: SystemUnderTest) -> None:
    for args in (["list"], ["info", sut.rw.id], ["mode", sut.rw.id, "ro"], ["gc", sut.rw.id]):
        admin_cli("se", *args, ARTSTORE_ADMIN_URL=dead_url).one_error_line("CONNECTION_FAILED")


def test_rebuild_index_usage(admin_cli: Cli) -> None:
    admin_cli("se", "rebuild-index").one_error_line("USAGE")
    admin_cli("se", "rebuild-index", "--online", "x", "--se-id", "y").one_error_line("USAGE")
