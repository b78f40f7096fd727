"""Swagger UI's files come from the service itself (issue 17): the page names no other
host, the fixed list of files is served, any other name is a 404 envelope."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from artstore.common.docs import docs_router
from artstore.common.errors import install_error_handlers


def _app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    install_error_handlers(app)
    app.include_router(docs_router("Test service"))
    return app


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        return await c.get(path)


async def test_the_page_loads_nothing_from_another_host() -> None:
    page = await _get("/docs")
    assert page.status_code == 200
    assert re.findall(r"https?://", page.text) == []
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"/docs/static/{name}" in page.text
    assert "/docs/oauth2-redirect" in page.text


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ],
)
async def test_each_file_is_served(name: str, kind: str) -> None:
    answer = await _get(f"/docs/static/{name}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(kind)
    assert len(answer.content) > 100


@pytest.mark.parametrize("name", ["__init__.py", "..%2F..%2Fdocs.py", "index.html", "x" * 5000])
async def test_any_other_name_is_not_found(name: str) -> None:
    answer = await _get(f"/docs/static/{name}")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


async def test_the_oauth2_redirect_page_is_served() -> None:
    answer = await _get("/docs/oauth2-redirect")
    assert answer.status_code == 200
    assert "oauth2" in answer.text.lower()
