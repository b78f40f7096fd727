"""``login``, ``logout``, ``whoami``."""

from __future__ import annotations

from typing import Annotated

import typer

from artstore.cli import runtime
from artstore.cli.app import fail
from artstore.client import Client
from artstore.client.credentials import Credentials
from artstore.client.http import token_expiry


def login(
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="User name (prompted if missing)")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="ARTSTORE_PASSWORD", help="Password (prompted if missing)"),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="Log in as a service account (client credentials)")
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(envvar="ARTSTORE_CLIENT_SECRET", help="The service account's secret"),
    ] = None,
) -> None:
    """Get a token from the admin and keep it in the user's config dir (0600).

    A user session is renewed with its refresh token; a service account's token with
    its client credentials, which are kept for that reason.
    """
    config = runtime.make_config(None)
    with Client(config) as c:
        if client_id or client_secret:
            if not client_id:
                fail("--client-secret needs --client-id", "USAGE", 2)
            secret = client_secret or typer.prompt("Client secret", hide_input=True)
            tokens = c.login_client(client_id, secret)
            creds = Credentials(kind="service_account", subject=client_id, client_id=client_id,
                                client_secret=secret)  # fmt: skip
        else:
            user = username or typer.prompt("Username")
            pw = password or typer.prompt("Password", hide_input=True)
            tokens = c.login(user, pw)
            creds = Credentials(kind="user", subject=user, refresh_token=tokens.refresh_token)
    creds.access_token = tokens.access_token
    creds.admin_url, creds.ingester_url, creds.query_url = (
        config.admin_url,
        config.ingester_url,
        config.query_url,
    )
    st = runtime.store()
    st.save(creds)
    runtime.note(f"logged in as {creds.subject} (scopes: {tokens.scope or '-'}); "
                 f"credentials in {st.path}")  # fmt: skip


def logout() -> None:
    """Revoke the session's refresh token and forget the stored credentials."""
    st = runtime.store()
    creds = st.load()
    if creds is None:
        runtime.note("not logged in")
        return
    if creds.refresh_token:
        with Client(runtime.make_config(creds, refresh_token=creds.refresh_token)) as c:
            try:
                c.logout()
            finally:
                st.clear()
    else:
        st.clear()
    runtime.note("logged out")


def whoami(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Who the stored (or ARTSTORE_TOKEN) credentials are, and what they may do."""
    with runtime.client() as c:
        me = c.me()
        exp = token_expiry(c.tokens.access_token or "")
    if json_out:
        runtime.print_json(me)
        return
    from datetime import UTC, datetime

    runtime.fields(
        [
            ("subject", me.sub),
            ("kind", me.kind),
            ("name", me.name),
            ("roles", me.roles),
            ("scopes", me.scopes),
            ("token expires", datetime.fromtimestamp(exp, UTC) if exp else None),
            ("admin", c.config.admin_url),
        ]
    )


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
