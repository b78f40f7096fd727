"""login / logout / whoami, the stored credentials, token renewal, and the error contract
for bad credentials, a service that is down and usage mistakes."""

from __future__ import annotations

import json
import stat

from tests.cli.conftest import Cli
from tests.support.admin import ADMIN_PASSWORD


def test_login_stores_credentials_privately(cli: Cli) -> None:
    r = cli.ok("login", "-u", "admin", "--password", ADMIN_PASSWORD)
    assert "logged in as admin" in r.err
    path = cli.config_dir / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    creds = json.loads(path.read_text())
    assert creds["subject"] == "admin" and creds["access_token"] and creds["refresh_token"]
    assert creds["admin_url"] == cli.system.admin_url
    me = json.loads(cli.ok("whoami", "--json").out)
    assert me["sub"] == "admin" and "admin:write" in me["scopes"]
    assert "admin" in cli.ok("whoami").out


def test_login_prompts_for_what_is_missing(cli: Cli) -> None:
    cli.ok("login", input=f"admin\n{ADMIN_PASSWORD}\n")
    assert json.loads(cli.ok("whoami", "--json").out)["sub"] == "admin"


def test_login_with_bad_credentials(cli: Cli) -> None:
    line = cli("login", "-u", "admin", "--password", "wrong-password-1").one_error_line(
        "INVALID_GRANT"
    )
    assert "error: " in line
    assert not (cli.config_dir / "credentials.json").exists()
    cli("login", "-u", "nobody-here", "--password", "x" * 12).one_error_line("INVALID_GRANT")


def test_login_as_service_account(cli: Cli) -> None:
    sa = cli.system.system.admin.create_sa(["files:read", "storage:read"])
    cli.ok("login", "--client-id", sa["client_id"], "--client-secret", sa["client_secret"])
    me = json.loads(cli.ok("whoami", "--json").out)
    assert me["sub"] == sa["client_id"] and me["kind"] == "service_account"
    cli("login", "--client-id", sa["client_id"], "--client-secret", "nope").one_error_line(
        "INVALID_CLIENT"
    )


def test_admin_down(cli: Cli, dead_url: str) -> None:
    r = cli("login", "-u", "admin", "--password", ADMIN_PASSWORD, ARTSTORE_ADMIN_URL=dead_url)
    assert dead_url in r.one_error_line("CONNECTION_FAILED")
    cli.login_admin()
    cli("whoami", ARTSTORE_ADMIN_URL=dead_url).one_error_line("CONNECTION_FAILED")
    # the global option wins over the environment
    cli("--admin-url", dead_url, "whoami").one_error_line("CONNECTION_FAILED")


def test_not_logged_in(cli: Cli) -> None:
    cli("whoami").one_error_line("NOT_LOGGED_IN")
    cli("ls").one_error_line("NOT_LOGGED_IN")


def test_a_bad_token_is_unauthorized(cli: Cli) -> None:
    cli("whoami", ARTSTORE_TOKEN="not-a-jwt").one_error_line("UNAUTHORIZED")


def test_expired_access_token_is_renewed_and_saved(admin_cli: Cli) -> None:
    path = admin_cli.config_dir / "credentials.json"
    creds = json.loads(path.read_text())
    old_refresh = creds["refresh_token"]
    creds["access_token"] = "stale.token.value"  # the admin answers 401; the CLI renews
    path.write_text(json.dumps(creds))
    assert json.loads(admin_cli.ok("whoami", "--json").out)["sub"] == "admin"
    renewed = json.loads(path.read_text())
    assert renewed["access_token"] != "stale.token.value"
    assert renewed["refresh_token"] != old_refresh  # rotated on use, and kept
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_session_that_cannot_be_renewed(admin_cli: Cli) -> None:
    path = admin_cli.config_dir / "credentials.json"
    creds = json.loads(path.read_text())
    creds["access_token"], creds["refresh_token"] = "stale.token.value", "revoked-or-unknown"
    path.write_text(json.dumps(creds))
    line = admin_cli("whoami").one_error_line("INVALID_GRANT")
    assert "log in again" in line


def test_logout_revokes_the_session(admin_cli: Cli) -> None:
    refresh = json.loads((admin_cli.config_dir / "credentials.json").read_text())["refresh_token"]
    admin_cli.ok("logout")
    assert not (admin_cli.config_dir / "credentials.json").exists()
    admin_cli("whoami").one_error_line("NOT_LOGGED_IN")
    r = admin_cli.system.system.admin.token_request(
        {"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert r.status_code == 400  # revoked on the server, not only forgotten locally
    assert "not logged in" in admin_cli.ok("logout").err


def test_usage_errors_are_one_line_exit_2(cli: Cli) -> None:
    for args in (["no-such-command"], ["upload"], ["download"], ["ls", "--limit", "0"],
                 ["se", "mode", "x", "sideways"],
                 ["upload", "--ttl", "3", "--permanent", "f.txt"]):  # fmt: skip
        r = cli(*args)
        r.one_error_line("USAGE")
        assert r.code == 2, args


def test_help_and_existing_commands_still_work(cli: Cli) -> None:
    out = cli.ok("--help").out
    for name in ("serve", "up", "migrate", "login", "upload", "se", "admin", "audit"):
        assert name in out
    assert "rebuild-index" in cli.ok("se", "--help").out
