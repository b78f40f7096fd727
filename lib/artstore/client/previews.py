"""Previews (docs/previews.md): ``GET /api/v1/files/{id}/preview`` on the query module.

Its own module (not ``api.py``): a preview is small, read whole, and its 202 "not made
yet" is an answer, not an error. Use with ``client.call(get_preview(...))``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx

from artstore.client.http import Call


@dataclass(frozen=True)
class PreviewAnswer:
    """``status`` 200: ``content`` is the image; 202: not made yet (``retry_after`` s)."""

    status: int
    content: bytes
    content_type: str
    etag: str
    retry_after: int | None = None

    @property
    def ready(self) -> bool:
        return self.status == 200

    @property
    def extension(self) -> str:
        return ".jpg" if self.content_type.startswith("image/jpeg") else ".webp"


def _parse(r: httpx.Response) -> PreviewAnswer:
    retry = r.headers.get("retry-after", "")
    return PreviewAnswer(
        status=r.status_code,
        content=r.content if r.status_code == 200 else b"",
        content_type=r.headers.get("content-type", ""),
        etag=r.headers.get("etag", ""),
        retry_after=int(retry) if retry.isdigit() else None,
    )


def get_preview(file_id: str, size: int | None = None) -> Call[PreviewAnswer]:
    params = {"size": size} if size is not None else None
    return Call(
        "GET", "query", f"/api/v1/files/{quote(file_id, safe='')}/preview", _parse, params=params
    )
