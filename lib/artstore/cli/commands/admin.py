"""``artstore admin users ...`` and ``artstore admin service-accounts ...``.

Users are named by id or username, service accounts by id, name or client id.
"""

from __future__ import annotations

from typing import Annotated

import typer

from artstore.cli import runtime
from artstore.cli.app import fail
from artstore.client.models import ServiceAccount, User

app = typer.Typer(help="Users and service accounts (admin:read / admin:write).",
                  no_args_is_help=True)  # fmt: skip
users = typer.Typer(help="Users: list, create, update, delete, unlock, reset passwords.",
                    no_args_is_help=True)  # fmt: skip
accounts = typer.Typer(help="Service accounts: list, create, update, delete, rotate secrets.",
                       no_args_is_help=True)  # fmt: skip
app.add_typer(users, name="users")
app.add_typer(accounts, name="service-accounts")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
UserArg = Annotated[str, typer.Argument(help="User id or username")]
SAArg = Annotated[str, typer.Argument(help="Service account id, name or client id")]


def _new_password(given: str | None, prompt: str) -> str:
    if given:
        return given
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))


def _user_table(items: list[User]) -> None:
    runtime.table(
        ["id", "username", "roles", "status", "email", "last login"],
        [[u.id, u.username, u.roles, u.status, u.email, u.last_login_at] for u in items],
    )


def _show_user(u: User, json_out: bool) -> None:
    if json_out:
        runtime.print_json(u)
    else:
        _user_table([u])


@users.command("list")
def users_list(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonOpt = False,
) -> None:
    """List users."""
    with runtime.client() as c:
        page = c.list_users(limit, offset)
    if json_out:
        runtime.print_json(page)
    else:
        _user_table(page.items)


@users.command("get")
def users_get(user: UserArg, json_out: JsonOpt = False) -> None:
    """Show one user."""
    with runtime.client() as c:
        _show_user(c.get_user(user), json_out)


@users.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Login name (never changes)")],
    role: Annotated[
        list[str] | None, typer.Option("--role", "-r", help="admin, operator, user, auditor")
    ] = None,
    email: Annotated[str | None, typer.Option(help="E-mail")] = None,
    full_name: Annotated[str | None, typer.Option(help="Full name")] = None,
    password: Annotated[
        str | None, typer.Option(envvar="ARTSTORE_NEW_PASSWORD", help="At least 12 characters")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a user (password prompted when not given)."""
    pw = _new_password(password, "Password for the new user")
    with runtime.client() as c:
        u = c.create_user(username=username, password=pw, roles=role or ["user"], email=email,
                          full_name=full_name)  # fmt: skip
    _show_user(u, json_out)


@users.command("update")
def users_update(
    user: UserArg,
    role: Annotated[
        list[str] | None, typer.Option("--role", "-r", help="Replaces the roles (repeat)")
    ] = None,
    email: Annotated[str | None, typer.Option(help="E-mail")] = None,
    full_name: Annotated[str | None, typer.Option(help="Full name")] = None,
    status: Annotated[str | None, typer.Option(help="active or disabled")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Change roles, e-mail, full name or status."""
    if role is None and email is None and full_name is None and status is None:
        fail("nothing to change (give --role, --email, --full-name or --status)", "USAGE", 2)
    with runtime.client() as c:
        u = c.update_user(user, roles=role, email=email, full_name=full_name, status=status)
    _show_user(u, json_out)


@users.command("delete")
def users_delete(user: UserArg) -> None:
    """Delete a user."""
    with runtime.client() as c:
        c.delete_user(user)
    typer.echo(f"deleted user {user}")


@users.command("unlock")
def users_unlock(user: UserArg) -> None:
    """Lift a lock set by failed logins."""
    with runtime.client() as c:
        c.unlock_user(user)
    typer.echo(f"unlocked user {user}")


@users.command("reset-password")
def users_reset_password(
    user: UserArg,
    password: Annotated[
        str | None, typer.Option(envvar="ARTSTORE_NEW_PASSWORD", help="The new password")
    ] = None,
) -> None:
    """Set a user's password (their sessions end)."""
    pw = _new_password(password, "New password")
    with runtime.client() as c:
        c.reset_password(user, pw)
    typer.echo(f"password of {user} reset")


# -- service accounts ---------------------------------------------------------------------
def _sa_table(items: list[ServiceAccount]) -> None:
    runtime.table(
        ["id", "name", "client_id", "scopes", "status", "secret expires"],
        [[a.id, a.name, a.client_id, a.scopes, a.status, a.secret_expires_at] for a in items],
    )


def _show_sa(a: ServiceAccount, json_out: bool) -> None:
    if json_out:
        runtime.print_json(a)
    else:
        _sa_table([a])


@accounts.command("list")
def sa_list(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonOpt = False,
) -> None:
    """List service accounts."""
    with runtime.client() as c:
        page = c.list_service_accounts(limit, offset)
    if json_out:
        runtime.print_json(page)
    else:
        _sa_table(page.items)


@accounts.command("get")
def sa_get(account: SAArg, json_out: JsonOpt = False) -> None:
    """Show one service account."""
    with runtime.client() as c:
        _show_sa(c.get_service_account(account), json_out)


@accounts.command("create")
def sa_create(
    name: Annotated[str, typer.Argument(help="Unique name")],
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="A scope (repeat)")],
    description: Annotated[str | None, typer.Option(help="What it is for")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a service account; its secret is shown this once."""
    with runtime.client() as c:
        a = c.create_service_account(name=name, scopes=scope, description=description)
    if json_out:
        runtime.print_json(a)
        return
    _sa_table([a])
    typer.echo(f"client_id: {a.client_id}\nclient_secret: {a.client_secret}")
    runtime.note("the secret is shown only now; keep it somewhere safe")


@accounts.command("update")
def sa_update(
    account: SAArg,
    name: Annotated[str | None, typer.Option(help="New name (client_id stays)")] = None,
    description: Annotated[str | None, typer.Option(help="Description")] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", "-s", help="Replaces the scopes (repeat)")
    ] = None,
    status: Annotated[str | None, typer.Option(help="active or suspended")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Rename, describe, re-scope, suspend or re-activate."""
    if name is None and description is None and scope is None and status is None:
        fail("nothing to change (give --name, --description, --scope or --status)", "USAGE", 2)
    with runtime.client() as c:
        a = c.update_service_account(account, name=name, description=description, scopes=scope,
                                     status=status)  # fmt: skip
    _show_sa(a, json_out)


@accounts.command("delete")
def sa_delete(account: SAArg) -> None:
    """Delete a service account."""
    with runtime.client() as c:
        c.delete_service_account(account)
    typer.echo(f"deleted service account {account}")


@accounts.command("rotate-secret")
def sa_rotate(account: SAArg, json_out: JsonOpt = False) -> None:
    """A new secret (the old one stops working at once)."""
    with runtime.client() as c:
        s = c.rotate_secret(account)
    if json_out:
        runtime.print_json(s)
        return
    typer.echo(f"client_id: {s.client_id}\nclient_secret: {s.client_secret}")
    runtime.note("the secret is shown only now; the old one no longer works")
