"""Bounded request fields as pydantic types: the text policy (text.py) and number bounds
in a form a request model declares, so that a breach is the route's 400
``VALIDATION_ERROR`` with the field named, before anything reaches the database.

``PlainText`` is a ``str`` of valid text (no NUL, control character or lone surrogate);
``MultilineText`` also allows tab and line breaks; ``Name`` and ``SearchText`` bound it
in UTF-8 bytes too. ``Int64`` is a non-negative integer PostgreSQL's ``bigint`` holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from artstore.common.errors import ValidationFailed
from artstore.common.pagination import MAX_INT64
from artstore.common.text import check_text

# Short names: usernames, account names, ids, filters.
NAME_MAX_BYTES = 256
# A full-text search query: websearch syntax over words; nobody types more.
QUERY_MAX_BYTES = 4096


def _text(max_bytes: int, multiline: bool) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            return check_text("value", value, max_bytes=max_bytes, multiline=multiline)
        except ValidationFailed as exc:
            # pydantic reports it under the field's own name (a ValueError is collected).
            raise ValueError(exc.message.removeprefix("value ")) from None

    return check


# Valid text; the field adds its own length (``Field(max_length=...)``, characters), and
# no text field anywhere is longer than a description's 4 KiB in bytes.
PlainText = Annotated[str, AfterValidator(_text(4096, multiline=False))]
MultilineText = Annotated[str, AfterValidator(_text(4096, multiline=True))]
# A name (username, account, storage id, filter value): valid text of 256 bytes at most.
Name = Annotated[
    str, StringConstraints(max_length=NAME_MAX_BYTES), AfterValidator(_text(NAME_MAX_BYTES, False))
]
SearchText = Annotated[
    str,
    StringConstraints(max_length=QUERY_MAX_BYTES),
    AfterValidator(_text(QUERY_MAX_BYTES, False)),
]
Int64 = Annotated[int, Field(ge=0, le=MAX_INT64)]


def refuse_nulls(data: object, names: tuple[str, ...]) -> object:
    """For a ``model_validator(mode="before")``: ``null`` given for a field that has no
    null state (a PATCH leaves a field out to keep it) is a 400, not a NOT NULL
    violation in the database."""
    if isinstance(data, dict):
        nulls = [n for n in names if n in data and data[n] is None]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} must not be null (leave it out to keep it)")
    return data
