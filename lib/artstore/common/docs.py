"""Swagger UI served by each service itself, from the files of the ``fastapi-swagger``
package (Swagger UI 5.34.0, Apache-2.0; the package is MIT): ``/docs`` must work on a
machine without internet, where a CDN's script is a blank page (issue 17).

``/docs``                   the page (FastAPI's own HTML, pointed at the files below)
``/docs/static/<file>``     swagger-ui-bundle.js, swagger-ui.css, favicon-32x32.png
``/docs/oauth2-redirect``   the page Swagger UI's OAuth2 flows return to
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from artstore.common.errors import NotFound

DOCS_PATH = "/docs"
STATIC_PATH = f"{DOCS_PATH}/static"
OAUTH2_REDIRECT_PATH = f"{DOCS_PATH}/oauth2-redirect"

# The only files served: a fixed list, so no request path ever reaches the file system.
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# The files change only with the pinned package; a day keeps reloads off the wire.
_CACHE = "public, max-age=86400"


def _asset_dir() -> Path:
    return Path(str(resources.files("fastapi_swagger") / "resources"))


def docs_router(title: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    folder = _asset_dir()

    @router.get(DOCS_PATH)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy with a path prefix every URL of the page keeps that prefix.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        app: FastAPI = request.app
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_PATH}/favicon-32x32.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_PATH,
            # A pasted or fetched token survives a reload of the page.
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @router.get(OAUTH2_REDIRECT_PATH)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get(STATIC_PATH + "/{name}")
    async def asset(name: str) -> FileResponse:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise NotFound("no such file")
        return FileResponse(folder / name, media_type=media_type, headers={"Cache-Control": _CACHE})

    return router
