"""Secrets (issue 13, finding 5) against running processes: a service configured with a
published placeholder or a too-short secret refuses to start (unless ARTSTORE_DEV_MODE
is on), naming the setting and never echoing its value; generated bootstrap secrets go
to a 0600 file and never to a log line."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from artstore.admin.bootstrap import ACCOUNT_SCOPES
from tests.support.admin import AdminUnderTest
from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess, free_port

STRONG_KEK = "kek-" + uuid.uuid4().hex + uuid.uuid4().hex


def _refused(proc: ServiceProcess, value: str, setting: str) -> None:
    proc.start(wait=False)
    code = proc.wait_exit(60)
    log = proc.log()
    assert code != 0, log
    assert setting in log, log
    assert value not in log, log  # the refusal names the setting, never the value


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("AM_KEY_ENCRYPTION_KEY", "change-me-key-encryption-key"),  # the compose default
        ("AM_KEY_ENCRYPTION_KEY", "dev-only-key-encryption-key"),  # the dev overlay's
        ("AM_KEY_ENCRYPTION_KEY", "Xq3-short-kek"),
        ("AM_BOOTSTRAP_ADMIN_PASSWORD", "change-me-admin-password"),
        ("AM_BOOTSTRAP_ADMIN_PASSWORD", "CHANGE-ME-admin-password"),  # the base manifest's
        ("AM_BOOTSTRAP_ADMIN_PASSWORD", "sh0rt-pw!"),
    ],
)
def test_admin_refuses_placeholder_or_short_secrets(
    admin_db: TestDatabase, tmp_path: Path, setting: str, value: str
) -> None:
    env = {"AM_KEY_ENCRYPTION_KEY": STRONG_KEK, setting: value, "ARTSTORE_DEV_MODE": "0"}
    admin = AdminUnderTest(tmp_path, admin_db, **env)
    _refused(admin.process, value, setting)


def test_admin_refuses_a_placeholder_key_encryption_key_file(
    admin_db: TestDatabase, tmp_path: Path
) -> None:
    kek_file = tmp_path / "kek"
    kek_file.write_text("CHANGE-ME-long-random-secret\n")
    admin = AdminUnderTest(
        tmp_path,
        admin_db,
        AM_KEY_ENCRYPTION_KEY="",
        AM_KEY_ENCRYPTION_KEY_FILE=str(kek_file),
        ARTSTORE_DEV_MODE="0",
    )
    _refused(admin.process, "CHANGE-ME-long-random-secret", "AM_KEY_ENCRYPTION_KEY_FILE")


def test_dev_mode_accepts_a_placeholder(tmp_path: Path) -> None:
    db = TestDatabase("devmode")
    admin = AdminUnderTest(
        tmp_path,
        db,
        AM_KEY_ENCRYPTION_KEY="change-me-key-encryption-key",
        ARTSTORE_DEV_MODE="1",
    )
    try:
        admin.start()  # raises if it exits instead
        assert httpx.get(f"{admin.url}/health/live", timeout=10).status_code == 200
    finally:
        admin.process.stop()
        db.drop()


@pytest.mark.parametrize(
    "value", ["change-me-link-secret", "dev-only-link-secret", "0123456789abcdef"]
)
def test_query_refuses_placeholder_or_short_link_secret(tmp_path: Path, value: str) -> None:
    port = free_port()
    env = {
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",  # refused before any use
        "QM_LINK_SECRET": value,
        "QM_DATA_DIR": str(tmp_path / "query"),
        "ARTSTORE_DEV_MODE": "0",
    }
    proc = ServiceProcess("query", env, port, tmp_path / "query.log")
    _refused(proc, value, "QM_LINK_SECRET")


@pytest.fixture
def generating_admin(tmp_path: Path) -> Iterator[AdminUnderTest]:
    """An admin on a fresh database with no admin password given: it generates one."""
    db = TestDatabase("secrets")
    admin = AdminUnderTest(
        tmp_path,
        db,
        AM_BOOTSTRAP_ADMIN_PASSWORD="",
        AM_BOOTSTRAP_CREDENTIALS_FILE=str(tmp_path / "secret" / "first-start.json"),
        LOG_LEVEL="DEBUG",
    ).start()
    yield admin
    admin.process.stop()
    db.drop()


def test_generated_bootstrap_secrets_go_to_a_0600_file_never_to_the_log(
    generating_admin: AdminUnderTest, tmp_path: Path
) -> None:
    path = tmp_path / "secret" / "first-start.json"
    assert path.stat().st_mode & 0o777 == 0o600
    creds = json.loads(path.read_text())
    password = creds["admin"]["password"]
    # The file's password is the admin's: it logs in.
    token = generating_admin.token_request(
        {"grant_type": "password", "username": "admin", "password": password}
    )
    assert token.status_code == 200, token.text
    generating_admin.process.stop()  # every line flushed
    log = generating_admin.process.log_path.read_text()
    assert str(path) in log  # the log says where to look ...
    secrets = [password] + [c["client_secret"] for name, c in creds.items() if name != "admin"]
    # the admin's password and one secret per bootstrap service account (ingester, query, worker)
    assert len(secrets) == 1 + len(ACCOUNT_SCOPES) >= 4
    for secret in secrets:
        assert secret not in log  # ... and never what is there
