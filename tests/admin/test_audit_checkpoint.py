"""Signed checkpoints of the audit chain (issue 13, finding 6) against a running admin:
deleting the newest entries in PostgreSQL is reported by verify, and a checkpoint is a
JWS any holder of the published keys can check."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jose import jws

from tests.support.admin import AdminUnderTest
from tests.support.database import TestDatabase


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[AdminUnderTest]:
    """Its own database: these tests cut the chain."""
    db = TestDatabase("audit_cp")
    am = AdminUnderTest(tmp_path, db, AM_AUDIT_CHECKPOINT_INTERVAL="0.2").start()
    yield am
    am.process.stop()
    db.drop()


def _verify(admin: AdminUnderTest, token: str) -> dict[str, Any]:
    with admin.client(token) as c:
        r = c.get("/api/v1/audit/verify")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _checkpointed_head(admin: AdminUnderTest, token: str) -> dict[str, Any]:
    """Until the newest entry is covered by a signed checkpoint."""
    deadline = time.monotonic() + 30
    while True:
        body = _verify(admin, token)
        if body["ok"] and body.get("last_checkpoint_seq") == body["entries_checked"]:
            return body
        assert time.monotonic() < deadline, f"no checkpoint of the head: {body}"
        time.sleep(0.1)


def test_deleting_the_newest_entries_is_reported(admin: AdminUnderTest) -> None:
    token = admin.admin_token()
    for _ in range(3):
        admin.create_user(["user"])
    head = _checkpointed_head(admin, token)["entries_checked"]
    assert head >= 4  # bootstrap entries + three users

    admin.sql("DELETE FROM admin.audit_log WHERE seq > $1", head - 2)

    body = _verify(admin, token)
    assert body["ok"] is False
    assert body["first_bad_seq"] == head - 1
    assert body["entries_checked"] == head - 2
    assert "removed" in body["reason"]
    # The writer does not paper over the cut by signing the shorter chain.
    assert admin.sql("SELECT max(seq) AS seq FROM admin.audit_checkpoints")[0]["seq"] == head


def test_a_checkpoint_is_a_jws_by_a_published_key(admin: AdminUnderTest) -> None:
    token = admin.admin_token()
    admin.create_user(["user"])
    head = _checkpointed_head(admin, token)["last_checkpoint_seq"]
    (cp,) = admin.sql("SELECT * FROM admin.audit_checkpoints WHERE seq = $1", head)
    keys = {k["kid"]: k for k in httpx.get(admin.jwks_url, timeout=10).json()["keys"]}
    signed = json.loads(jws.verify(cp["signature"], keys[cp["kid"]], algorithms=["RS256"]))
    (entry,) = admin.sql("SELECT hash FROM admin.audit_log WHERE seq = $1", head)
    assert signed["seq"] == head and signed["hash"] == entry["hash"] == cp["hash"]

    # A checkpoint row edited to agree with an edited chain no longer matches its JWS.
    admin.sql("UPDATE admin.audit_checkpoints SET hash = $2 WHERE seq = $1", head, "0" * 64)
    body = _verify(admin, token)
    assert body["ok"] is False and body["first_bad_seq"] == head
    assert "does not match" in body["reason"]
