"""admin users / service-accounts and audit: success paths, unknown ids, conflicts,
missing rights, the admin down -- each failure one line and a non-zero exit."""

from __future__ import annotations

import json
import uuid

from tests.cli.conftest import Cli

PASSWORD = "a-long-enough-pw"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_users_lifecycle(admin_cli: Cli) -> None:
    name = _name("cli")
    created = json.loads(admin_cli.ok("admin", "users", "create", name, "--role", "operator",
                                      "--email", "o@example.org", "--password", PASSWORD,
                                      "--json").out)  # fmt: skip
    assert created["username"] == name and created["roles"] == ["operator"]
    assert name in admin_cli.ok("admin", "users", "list").out
    by_name = json.loads(admin_cli.ok("admin", "users", "get", name, "--json").out)
    assert by_name["id"] == created["id"]
    updated = json.loads(admin_cli.ok("admin", "users", "update", created["id"], "--role", "user",
                                      "--full-name", "Ops Person", "--json").out)  # fmt: skip
    assert updated["roles"] == ["user"] and updated["full_name"] == "Ops Person"
    admin_cli.ok("admin", "users", "unlock", name)
    admin_cli.ok("admin", "users", "reset-password", name, "--password", PASSWORD + "-2")
    Cli(admin_cli.system, admin_cli.config_dir.parent / "other").login_as(name, PASSWORD + "-2")
    admin_cli.ok("admin", "users", "delete", name)
    admin_cli("admin", "users", "get", name).one_error_line("NOT_FOUND")


def test_users_errors(admin_cli: Cli, dead_url: str) -> None:
    admin_cli("admin", "users", "get", str(uuid.uuid4())).one_error_line("NOT_FOUND")
    admin_cli("admin", "users", "delete", "no-such-user").one_error_line("NOT_FOUND")
    admin_cli("admin", "users", "create", "admin", "--password", PASSWORD).one_error_line(
        "CONFLICT"
    )
    line = admin_cli("admin", "users", "create", _name("x"), "--password", "short").one_error_line(
        "VALIDATION_ERROR"
    )
    assert "password" in line
    admin_cli("admin", "users", "update", "admin").one_error_line("USAGE")
    admin_cli("admin", "users", "list", ARTSTORE_ADMIN_URL=dead_url).one_error_line(
        "CONNECTION_FAILED"
    )


def test_a_plain_user_is_forbidden(cli: Cli) -> None:
    user = cli.system.system.admin.create_user(["user"])
    cli.login_as(user["username"], user["password"])
    cli("admin", "users", "list").one_error_line("FORBIDDEN")
    cli("admin", "service-accounts", "list").one_error_line("FORBIDDEN")
    cli("audit").one_error_line("FORBIDDEN")
    cli("se", "gc", cli.system.edit.id).one_error_line("FORBIDDEN")


def test_service_accounts_lifecycle(admin_cli: Cli) -> None:
    name = _name("robot")
    out = admin_cli.ok("admin", "service-accounts", "create", name, "-s", "files:read",
                       "-s", "storage:read", "--description", "nightly job").out  # fmt: skip
    secret = out.split("client_secret: ")[1].split()[0]
    client_id = out.split("client_id: ")[1].split()[0]
    sa = json.loads(admin_cli.ok("admin", "service-accounts", "get", name, "--json").out)
    assert sa["client_id"] == client_id and sa["scopes"] == ["files:read", "storage:read"]
    other = Cli(admin_cli.system, admin_cli.config_dir.parent / "robot")
    other.ok("login", "--client-id", client_id, "--client-secret", secret)
    assert json.loads(other.ok("whoami", "--json").out)["kind"] == "service_account"

    rotated = json.loads(
        admin_cli.ok("admin", "service-accounts", "rotate-secret", client_id, "--json").out
    )
    assert rotated["client_secret"] != secret
    other("login", "--client-id", client_id, "--client-secret", secret).one_error_line(
        "INVALID_CLIENT"
    )
    upd = json.loads(admin_cli.ok("admin", "service-accounts", "update", sa["id"], "--status",
                                  "suspended", "--json").out)  # fmt: skip
    assert upd["status"] == "suspended"
    assert name in admin_cli.ok("admin", "service-accounts", "list").out
    admin_cli.ok("admin", "service-accounts", "delete", name)
    admin_cli("admin", "service-accounts", "get", name).one_error_line("NOT_FOUND")


def test_service_accounts_errors(admin_cli: Cli, dead_url: str) -> None:
    admin_cli("admin", "service-accounts", "rotate-secret", str(uuid.uuid4())).one_error_line(
        "NOT_FOUND"
    )
    admin_cli("admin", "service-accounts", "create", _name("bad"), "-s", "no:such").one_error_line(
        "VALIDATION_ERROR"
    )
    admin_cli("admin", "service-accounts", "create", "x").one_error_line("USAGE")
    admin_cli("admin", "service-accounts", "list", ARTSTORE_ADMIN_URL=dead_url).one_error_line(
        "CONNECTION_FAILED"
    )


def test_audit(admin_cli: Cli, dead_url: str) -> None:
    name = _name("audited")
    admin_cli.ok("admin", "users", "create", name, "--password", PASSWORD)
    page = json.loads(admin_cli.ok("audit", "--action", "user.create", "--json").out)
    assert any(e["action"] == "user.create" and e["actor"] == "admin" for e in page["items"])
    assert "user.create" in admin_cli.ok("audit", "--limit", "5").out
    assert "intact" in admin_cli.ok("audit", "--verify").out
    assert json.loads(admin_cli.ok("audit", "--verify", "--json").out)["ok"] is True
    admin_cli("audit", "--since", "yesterday").one_error_line("VALIDATION_ERROR")
    admin_cli("audit", ARTSTORE_ADMIN_URL=dead_url).one_error_line("CONNECTION_FAILED")
