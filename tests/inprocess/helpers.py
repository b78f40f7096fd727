"""Small request helpers shared by the in-process tests."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    """``r`` is the error envelope with ``status`` and ``code`` (never a bare 500)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]


async def upload(
    c: httpx.AsyncClient, data: bytes, name: str = "f.txt", **params: Any
) -> dict[str, Any]:
    r = await c.post("/api/v1/files", content=data, params={"filename": name, **params})
    assert r.status_code == 201, r.text
    meta: dict[str, Any] = r.json()
    return meta


def download_url(meta: dict[str, Any]) -> str:
    return f"/api/v1/files/{meta['file_id']}/download"
