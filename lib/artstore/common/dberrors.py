"""Which database errors are about the data sent, which mean the database cannot be
reached, and how to name any of them safely (shared by every service).

PostgreSQL refuses a row for its data (a NUL in a text column, an invalid jsonb escape, a
value too long for its column or index, a lone surrogate the driver cannot encode...):
that row will be refused again on every retry, so it must not be treated as an outage
(owed, replayed in order) or it blocks every later update forever (issue 11). Anything
else (connection refused or lost, a timeout, a missing table...) is treated as an
outage: retrying later is right for those.

On a request path the same split decides the answer (errors.py): a data error is the
client's 400, only a connection-class error is 503 (clients and load balancers retry a
503, and alerts fire on it); anything else stays an unexpected 500.

No SQLAlchemy import: the offline rebuild-index uses this with plain asyncpg. A
SQLAlchemy error carries the driver's error in its ``__cause__`` chain (and ``orig``),
where the SQLSTATE is read.
"""

from __future__ import annotations

import re

# SQLSTATE classes of errors about the values of one row: 22 data exception, 23
# integrity constraint violation; and 54000 program limit exceeded (an index entry
# over btree's maximum: a value too long for its index).
_DATA_CLASSES = ("22", "23")
_DATA_STATES = frozenset({"54000"})
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")
_MAX_DEPTH = 8


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first (SQLAlchemy wrapper, adapter, driver)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < _MAX_DEPTH and cur not in out:
        out.append(cur)
        nxt = cur.__cause__
        if nxt is None:
            orig = getattr(cur, "orig", None)
            nxt = orig if isinstance(orig, BaseException) else None
        cur = nxt
    return out


def _sqlstate(exc: BaseException) -> str | None:
    for e in _chain(exc):
        state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(state, str) and _SQLSTATE.fullmatch(state):
            return state
    return None


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` refuses one row for its values (retrying cannot help); False
    for everything else, which counts as a catalog outage."""
    state = _sqlstate(exc)
    if state is not None:
        return state[:2] in _DATA_CLASSES or state in _DATA_STATES
    # Raised before anything reached the server: text the driver cannot encode (a lone
    # surrogate: UnicodeEncodeError), a value it cannot convert. Never a connection error.
    return any(isinstance(e, ValueError) for e in _chain(exc))


# SQLSTATE classes and codes meaning "the database is not reachable or not able to work
# now": 08 connection exception, 53 insufficient resources (too many connections, disk
# full), 57P01-57P03 shutdown / crash / cannot connect now, 57014 a statement timeout.
_CONNECTION_CLASSES = ("08", "53")
_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03", "57014"})


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot answer now (retry later: 503): a
    connection-class SQLSTATE, a statement timeout, or a socket/timeout error with no
    SQLSTATE at all (refused, reset, DNS, pool timeout)."""
    state = _sqlstate(exc)
    if state is not None:
        return state[:2] in _CONNECTION_CLASSES or state in _CONNECTION_STATES
    for e in _chain(exc):
        if isinstance(e, (OSError, TimeoutError, ConnectionError)):
            return True
        # asyncpg's "connection is closed" / SQLAlchemy's invalidated connection.
        # SQLAlchemy's pool timeout is its own TimeoutError (not the builtin).
        if type(e).__name__ in ("ConnectionDoesNotExistError", "InterfaceError", "TimeoutError"):
            return True
        if getattr(e, "connection_invalidated", False):
            return True
    return False


def safe_reason(exc: BaseException) -> str:
    """A short description of a catalog error, safe to show to any client: the class name
    of the innermost (driver) error and its SQLSTATE. Never the message, which may quote
    the SQL statement or a parameter value."""
    root = _chain(exc)[-1]
    name = type(root).__name__
    state = _sqlstate(exc)
    return f"{name} (SQLSTATE {state})" if state else name
