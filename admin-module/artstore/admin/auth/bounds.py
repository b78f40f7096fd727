"""Token-request values that can never be valid (issue 13 finding 3): refused with the
RFC 6749 error shape before they reach the database, and a password attempt with an
impossible username still audited, under a bounded, printable rendering of it.

A username is ``USERNAME`` (ASCII, at most 64 characters; users/schemas.py): a
megabyte or a NUL cannot name a user, and written as is it would break the audit
insert (an index entry over btree's maximum, a NUL PostgreSQL refuses): the attempt
went unaudited and answered 500.
"""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.audit.service import Actor, Entry, record
from artstore.admin.auth.errors import OAuthError
from artstore.admin.users.schemas import USERNAME
from artstore.admin.users.service import REFUSED

# Secrets are hashed or compared, never stored as text: any byte may be in them.
_SECRET_FIELDS = frozenset({"password", "client_secret"})
_SHOWN_CHARS = 64


def check_form(form: dict[str, str]) -> None:
    """NUL in a value that may be stored or looked up (client_id, scope, audience...) is
    ``invalid_request``; the password grant's username is checked by :func:`refuse_username`
    so that its attempt is audited."""
    for key, value in form.items():
        if key in _SECRET_FIELDS or key == "username":
            continue
        if "\x00" in key or "\x00" in value:
            raise OAuthError("invalid_request", f"parameter {key[:64]!r} contains NUL")


def shown(username: str) -> str:
    """A bounded, printable rendering of anything given as a username, for the audit."""
    size = len(username.encode("utf-8", "surrogatepass"))
    head = ascii(username[:_SHOWN_CHARS])[1:-1]
    return head if size <= _SHOWN_CHARS and head == username else f"{head}... ({size} bytes)"


async def refuse_username(session: AsyncSession, username: str, address: str) -> None:
    """Nothing when ``username`` could name a user; else audit the attempt and answer
    the password grant's uniform ``invalid_grant``."""
    if re.fullmatch(USERNAME, username):
        return
    async with session.begin():
        await record(
            session,
            Actor(shown(username), "anonymous"),
            Entry(
                "login.failure",
                "user",
                None,
                outcome="failure",
                details={"grant": "password", "address": address, "reason": "impossible username"},
            ),
        )
    raise OAuthError("invalid_grant", REFUSED)
