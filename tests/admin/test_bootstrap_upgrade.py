"""An admin upgraded from a version whose bootstrap gave the ingester and query accounts
no ``storage:write`` (needed to exchange tokens for SE-bound ones, architecture §10) gives it
to them on its next start, once: audited, nothing taken away, the secret unchanged, and
a further start writes nothing. A real admin process restarted on its database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.admin import AdminUnderTest
from tests.support.database import TestDatabase


@pytest.fixture
def admin(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AdminUnderTest]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_bootstrap_upgrade")
    running = AdminUnderTest(tmp_path, db).start()
    try:
        yield running
    finally:
        running.process.stop()
        db.drop()


def _accounts(admin: AdminUnderTest) -> dict[str, list[str]]:
    rows = admin.sql("SELECT name, scopes FROM admin.service_accounts ORDER BY name")
    return {r["name"]: list(r["scopes"]) for r in rows}


def _upgrades(admin: AdminUnderTest) -> list[dict[str, Any]]:
    rows = admin.sql(
        "SELECT target_id, actor, details FROM admin.audit_log "
        "WHERE action = 'service_account.update' ORDER BY seq"
    )
    return [{**r, "details": json.loads(r["details"])} for r in rows]


def _restart(admin: AdminUnderTest) -> None:
    admin.process.stop()
    admin.process.start()


def test_an_older_deployments_accounts_get_storage_write_once(
    admin: AdminUnderTest, tmp_path: Path
) -> None:
    fresh = _accounts(admin)
    assert "storage:write" in fresh["ingester"] and "storage:write" in fresh["query"]
    assert _upgrades(admin) == []  # a first start makes them whole: nothing to upgrade
    # What an earlier version left: no storage:write; an operator also gave query admin:read.
    admin.sql(
        "UPDATE admin.service_accounts SET scopes = array_remove(scopes, 'storage:write') "
        "WHERE name IN ('ingester', 'query')"
    )
    admin.sql(
        "UPDATE admin.service_accounts SET scopes = array_append(scopes, 'admin:read') "
        "WHERE name = 'query'"
    )
    creds = json.loads((tmp_path / "data" / "bootstrap-credentials.json").read_text())
    _restart(admin)
    upgraded = _accounts(admin)
    assert upgraded["ingester"] == fresh["ingester"]
    assert set(upgraded["query"]) == {*fresh["query"], "admin:read"}  # nothing taken away
    assert upgraded["storage-element"] == fresh["storage-element"]
    entries = _upgrades(admin)
    assert len(entries) == 2
    for entry in entries:
        assert entry["actor"] == "system"
        assert entry["details"]["added"] == ["storage:write"]
        assert entry["details"]["fields"] == ["scopes"]
    # The same secret still signs in, and the token now carries the scope.
    ingester = creds["ingester"]
    token = admin.client_grant(ingester["client_id"], ingester["client_secret"])
    assert "storage:write" in token["scope"].split()
    # Idempotent: another start finds nothing to do and records nothing.
    _restart(admin)
    assert _accounts(admin) == upgraded
    assert len(_upgrades(admin)) == 2
