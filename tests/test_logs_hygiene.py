"""What log lines must never carry (issue 13, finding 5), against a running system:
signed-link tokens (access logs show route templates), SQL statements and the values of
a failed statement (another user's row) in an admin 500's log, and in its answer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.database import TestDatabase
from tests.support.process import ServiceProcess
from tests.support.se import StorageElementUnderTest
from tests.support.system import System, wait_ready


class Hygiene:
    def __init__(self, root: Path, db: TestDatabase) -> None:
        self.system = System(root, db)
        self.se: StorageElementUnderTest = self.system.add_se("rw")
        self.query: ServiceProcess = self.system.start_query(QM_REGISTRY_POLL_INTERVAL="1")
        wait_ready(self.query)


@pytest.fixture(scope="module")
def hy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hygiene]:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = TestDatabase(f"{worker}_hygiene")
    h = Hygiene(tmp_path_factory.mktemp("hygiene"), db)
    yield h
    h.system.stop()
    db.drop()


def test_a_followed_signed_link_leaves_no_token_in_the_logs(hy: Hygiene) -> None:
    token = hy.system.user_token(["user"])
    auth = {"Authorization": f"Bearer {token}"}
    up = httpx.post(
        f"{hy.se.url}/api/v1/files",
        headers=auth,
        content=b"link me",
        params={"filename": "l.txt"},
        timeout=30,
    )
    assert up.status_code == 201, up.text
    fid = up.json()["file_id"]
    made = httpx.post(f"{hy.query.url}/api/v1/files/{fid}/link", headers=auth, timeout=30)
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    link_token = url.rsplit("/", 1)[1]
    got = httpx.get(url, timeout=30)
    assert got.status_code == 200 and got.content == b"link me"
    assert httpx.get(url + "x", timeout=30).status_code == 403  # a refused one too

    hy.query.stop()  # every line flushed
    log = hy.query.log_path.read_text()
    assert "/api/v1/links/{token}" in log  # the access lines are there, as templates
    assert link_token not in log
    assert link_token[:40] not in log


def test_an_admin_500_logs_no_sql_and_no_row_values(hy: Hygiene) -> None:
    admin = hy.system.admin
    # A database failure no route maps: a trigger refusing one username, quoting the row
    # it refused the way PostgreSQL's own constraint messages do (DETAIL: Failing row
    # contains ...). Neither the statement nor a value of it may reach the log.
    admin.sql(
        """
        CREATE OR REPLACE FUNCTION admin.hygiene_refuse() RETURNS trigger AS $$
        BEGIN
          IF NEW.username LIKE 'hygiene-%' THEN
            RAISE EXCEPTION 'refused row %', NEW.email
              USING DETAIL = 'Failing row contains (' || NEW.email || ', '
                || NEW.password_hash || ')';
          END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql
        """
    )
    admin.sql(
        "CREATE TRIGGER hygiene_refuse BEFORE INSERT ON admin.users "
        "FOR EACH ROW EXECUTE FUNCTION admin.hygiene_refuse()"
    )
    email = f"victim-{uuid.uuid4().hex[:8]}@example.org"
    password = "hygiene-" + uuid.uuid4().hex
    try:
        with admin.client(admin.admin_token()) as c:
            r = c.post(
                "/api/v1/users",
                json={
                    "username": f"hygiene-{uuid.uuid4().hex[:6]}",
                    "password": password,
                    "email": email,
                    "roles": ["user"],
                },
            )
    finally:
        admin.sql("DROP TRIGGER hygiene_refuse ON admin.users")
    assert r.status_code >= 400
    log = admin.process.log_path.read_text()
    for text in (r.text, log):
        assert email not in text
        assert "$argon2" not in text  # the stored password hash
        assert password not in text
        assert "INSERT INTO" not in text.upper()
        assert "[SQL" not in text
    assert "RaiseError" in log  # the class is named


def test_the_log_formatters_describe_database_errors_and_keep_frames() -> None:
    """The one formatter every service logs through, on a driver-shaped error chain."""
    import logging

    from sqlalchemy.exc import IntegrityError

    from artstore.common.logs import ConsoleFormatter, JsonFormatter

    class UniqueViolationError(Exception):
        sqlstate = "23505"

    # Built at run time: a traceback shows source lines, which must not hold the value.
    email = "@".join(("victim", "example.org"))
    statement = " ".join(("INSERT", "INTO admin.users (email) VALUES ($1)"))

    def fail() -> None:
        try:
            raise UniqueViolationError(f"DETAIL: Failing row contains ({email})")
        except UniqueViolationError as driver:
            raise IntegrityError(statement, (email,), driver) from driver

    try:
        fail()
    except IntegrityError as exc:
        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "insert failed: %s", (exc,), (type(exc), exc, None)
        )
    for fmt in (JsonFormatter("t"), ConsoleFormatter()):
        line = fmt.format(record)
        assert email not in line and "INSERT" not in line
        assert "IntegrityError" in line and "SQLSTATE 23505" in line
        assert "in fail" in line  # the traceback's frames are kept
