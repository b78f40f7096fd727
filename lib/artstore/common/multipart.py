"""A streaming multipart/form-data reader: file bytes go straight on (SE writer, ingester).

Starlette's ``request.form()`` spools files to a temporary file first; that would
write every upload twice and outside our ``tmp/``. This reader turns the body into
events as it arrives instead.

Text is decoded strictly (artstore.common.text): a field that is not UTF-8 fails the
request with 400 naming it. A file part's headers (its filename and content type) are
checked as well, but the verdict travels with the part (``FileStart.error``, raised by
``FileStart.check()``): a batch fails that part alone and reads on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header

from artstore.common.errors import ValidationFailed
from artstore.common.text import DEFAULT_FILENAME, check_filename, check_media_type, decode_utf8

MAX_FIELD_BYTES = 64 * 1024


@dataclass
class Field:
    name: str
    value: str


@dataclass
class FileStart:
    name: str
    filename: str  # the name to keep (artstore.common.text.check_filename)
    content_type: str
    # Why the part's filename or content type is refused (then both are defaults).
    error: ValidationFailed | None = None

    def check(self) -> FileStart:
        if self.error is not None:
            raise self.error
        return self


@dataclass
class FileData:
    data: bytes


@dataclass
class FileEnd:
    pass


Event = Field | FileStart | FileData | FileEnd


def boundary_of(content_type: str) -> bytes:
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise ValidationFailed("multipart/form-data needs a boundary")
    return boundary


class MultipartReader:
    def __init__(self, stream: AsyncIterator[bytes], boundary: bytes) -> None:
        self._stream = stream
        self._events: list[Event] = []
        self._headers: dict[bytes, bytes] = {}
        self._hname = b""
        self._hvalue = b""
        self._current: FileStart | str | None = None
        self._field = bytearray()
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    # -- parser callbacks (synchronous, called from parser.write) -------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}
        self._hname = self._hvalue = b""
        self._field = bytearray()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._hname.lower()] = self._hvalue
        self._hname = self._hvalue = b""

    def _on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        # Only known names are used; a name that is not UTF-8 is just not one of them.
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is not None:
            ctype = self._headers.get(b"content-type", b"").decode("latin-1")
            start = FileStart(name, DEFAULT_FILENAME, "application/octet-stream")
            try:
                start.filename = check_filename("filename", decode_utf8("filename", filename))
                if ctype.strip():
                    start.content_type = check_media_type("content_type", ctype)
            except ValidationFailed as exc:
                start.error = exc
            self._current = start
            self._events.append(start)
        else:
            self._current = name

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if isinstance(self._current, FileStart):
            self._events.append(FileData(bytes(data[start:end])))
        else:
            self._field += data[start:end]
            if len(self._field) > MAX_FIELD_BYTES:
                raise ValidationFailed(f"form field {self._current!r} is too large")

    def _on_part_end(self) -> None:
        if isinstance(self._current, FileStart):
            self._events.append(FileEnd())
        elif self._current is not None:
            self._events.append(Field(self._current, decode_utf8(self._current, self._field)))
        self._current = None

    def _on_end(self) -> None:
        self._ended = True

    # -- async side -----------------------------------------------------------------------
    async def events(self) -> AsyncIterator[Event]:
        async for chunk in self._stream:
            if not chunk:
                continue
            try:
                self._parser.write(chunk)
            except ValidationFailed:
                raise
            except Exception as exc:  # the parser's own errors: the body is malformed
                raise ValidationFailed(f"malformed multipart body: {exc}") from exc
            events, self._events = self._events, []
            for event in events:
                yield event
        if not self._ended:
            raise ValidationFailed("multipart body ended early (truncated upload?)")
