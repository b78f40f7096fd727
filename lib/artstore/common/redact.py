"""Naming an exception safely: for log lines, `last_error`-like fields and health answers.

A database error's text quotes the SQL statement, often a parameter value and, for a
constraint violation, the whole failing row (``DETAIL: Failing row contains (...)``:
another user's password hash). So a database error is named by its class and SQLSTATE
only (:func:`artstore.common.dberrors.safe_reason`); any other exception by its class
and the first line of its message, cut short. Tracebacks keep their frames (file, line,
code) but every exception line in them is replaced the same way.
"""

from __future__ import annotations

import traceback

from artstore.common.dberrors import safe_reason

MAX_REASON = 200
# Modules whose exceptions may quote SQL text or parameter values in their message.
_DATABASE_MODULES = ("sqlalchemy", "asyncpg", "psycopg", "alembic")
_MAX_CHAIN = 8


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it (explicitly or while handling), outermost first."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < _MAX_CHAIN and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return out


def _from_database(exc: BaseException) -> bool:
    if hasattr(exc, "sqlstate") or hasattr(exc, "pgcode"):
        return True
    return type(exc).__module__.split(".")[0] in _DATABASE_MODULES


def is_database_error(exc: BaseException) -> bool:
    return any(_from_database(e) for e in _chain(exc))


def describe(exc: BaseException, *, database: bool | None = None) -> str:
    """``Class: short reason``, never SQL text or parameter values. ``database``: treat
    ``exc`` as part of a database error's chain (default: look at its own chain)."""
    if database if database is not None else is_database_error(exc):
        return f"{type(exc).__name__}: {safe_reason(exc)}"
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > MAX_REASON:
        first = first[:MAX_REASON] + "…"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def safe_traceback(exc: BaseException) -> str:
    """A traceback whose frames are intact and whose exception lines are :func:`describe`d."""
    parts: list[str] = []
    # One verdict for the whole chain: a driver error's message is as unsafe when it is
    # the cause of a wrapper as when it is raised alone.
    database = is_database_error(exc)
    for e in reversed(_chain(exc)):
        frames = "".join(traceback.format_tb(e.__traceback__))
        parts.append(
            f"Traceback (most recent call last):\n{frames}{describe(e, database=database)}"
        )
    return "\n\nwhich led to:\n\n".join(parts)
