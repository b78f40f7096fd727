"""``artstore quarantine list|restore|purge`` against the real admin and SEs (issue 15);
no worker runs here, so a restore stays queued."""

from __future__ import annotations

import json
import os
from typing import Any

from tests.cli.conftest import Cli
from tests.support.se import StorageElementUnderTest


def quarantined_copy(se: StorageElementUnderTest, file_id: str | None = None) -> str:
    """A file uploaded to ``se`` (as ``file_id`` if given), spoiled and quarantined."""
    with se.client() as c:
        params: dict[str, Any] = {"filename": "cli.bin"}
        if file_id:
            params["file_id"] = file_id
        r = c.post("/api/v1/files", content=os.urandom(4000), params=params)
        assert r.status_code == 201, r.text
        fid = str(r.json()["file_id"])
        blob = next(b for b in se.blobs() if fid.replace("-", "")[:8] in b.name)
        data = bytearray(blob.read_bytes())
        data[0] ^= 0xFF
        blob.write_bytes(bytes(data))
        c.post("/api/v1/maintenance/reconcile", params={"deep": "true"}).raise_for_status()
    return fid


def items(cli: Cli, se: StorageElementUnderTest) -> dict[str, dict[str, Any]]:
    page = json.loads(cli.ok("quarantine", "list", "--se", se.id, "--json").out)
    assert page["unreachable"] == []
    return {i["file_id"]: i for i in page["items"]}


def test_quarantine_list_restore_purge(admin_cli: Cli) -> None:
    sut = admin_cli.system
    rw, edit = sut.rw, sut.edit
    lost = quarantined_copy(rw)
    item = items(admin_cli, rw)[lost]
    assert item["state"] == "unrecoverable" and item["reason"] == "checksum_mismatch"
    table = admin_cli.ok("quarantine", "list").out
    assert item["item"] in table and "unrecoverable" in table

    admin_cli("quarantine", "restore", rw.id, item["item"]).one_error_line("CONFLICT")
    # A healthy copy of the same id elsewhere makes it restorable.
    kept = quarantined_copy(rw)
    with edit.client() as c:
        r = c.post("/api/v1/files", content=b"x" * 10, params={"filename": "k", "file_id": kept})
        assert r.status_code == 201, r.text
    other = items(admin_cli, rw)[kept]
    assert other["state"] == "damaged"
    out = admin_cli.ok("quarantine", "restore", rw.id, other["item"]).out
    assert out.startswith(f"repair of {kept} queued: job ")
    assert "already queued" in admin_cli.ok("quarantine", "restore", rw.id, other["item"]).out
    assert items(admin_cli, rw)[kept]["state"] == "restoring"

    refused = admin_cli("quarantine", "purge", rw.id, item["item"], input="n\n")
    assert refused.code != 0
    assert lost in items(admin_cli, rw)  # not purged
    out = admin_cli.ok("quarantine", "purge", rw.id, item["item"], "--yes").out
    assert out.startswith(f"purged {item['path']} on {rw.id}: {item['size']} bytes")
    assert lost not in items(admin_cli, rw)
    admin_cli("quarantine", "purge", rw.id, item["item"], "--yes").one_error_line("NOT_FOUND")
    admin_cli("quarantine", "restore", "se-nowhere", item["item"]).one_error_line("NOT_FOUND")
    admin_cli("quarantine", "restore", rw.id, "a*b").one_error_line("VALIDATION_ERROR")


def test_quarantine_needs_admin_rights(cli: Cli) -> None:
    user = cli.system.system.admin.create_user(["user"])
    cli.login_as(user["username"], user["password"])
    cli("quarantine", "list").one_error_line("FORBIDDEN")
    cli("quarantine", "purge", "se-x", "abc", "--yes").one_error_line("FORBIDDEN")
