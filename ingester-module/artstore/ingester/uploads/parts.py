"""A multipart request body read as events, with one file part at a time as a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from artstore.common.errors import ValidationFailed
from artstore.common.multipart import Event, Field, FileData, FileEnd, FileStart
from artstore.contracts.se import FILE_PART


class PartBody:
    """The bytes of the current file part. ``chunks()`` may be left unfinished (an SE
    failed); ``drain()`` then skips the rest so the next part can be read."""

    def __init__(self, events: AsyncIterator[Event]) -> None:
        self._events = events
        self.ended = False

    async def chunks(self) -> AsyncIterator[bytes]:
        async for event in self._events:
            if isinstance(event, FileData):
                yield event.data
            elif isinstance(event, FileEnd):
                self.ended = True
                return

    async def drain(self) -> None:
        if not self.ended:
            async for _ in self.chunks():
                pass


async def single_file(
    events: AsyncIterator[Event], apply: Callable[[str, str], None]
) -> tuple[FileStart, AsyncIterator[bytes]]:
    """Fields before the file part are applied; the file part's bytes are returned as a
    stream that fails (400, so the SE keeps nothing) when anything follows the file:
    its fields could no longer reach the SE, which already has them in its query."""
    start: FileStart | None = None
    async for event in events:
        if isinstance(event, Field):
            apply(event.name, event.value)
        elif isinstance(event, FileStart):
            if event.name != FILE_PART:
                raise ValidationFailed(f"the file part must be named '{FILE_PART}'")
            start = event
            break
    if start is None:
        raise ValidationFailed(
            f"multipart body has no '{FILE_PART}' part", details={"field": FILE_PART}
        )

    async def body() -> AsyncIterator[bytes]:
        part = PartBody(events)
        async for chunk in part.chunks():
            yield chunk
        async for event in events:
            if isinstance(event, Field):
                raise ValidationFailed(
                    "form fields must come before the file part",
                    details={"field": event.name},
                )
            if isinstance(event, FileStart):
                raise ValidationFailed("one file per request (POST /api/v1/files/batch)")

    return start, body()
