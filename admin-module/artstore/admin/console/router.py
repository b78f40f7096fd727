"""``/console``: the web console's page, its files and its configuration (docs/console.md).

``/console/``             the app (one HTML page; hash routes pick the view)
``/console/callback``     the same page: where the OAuth code + PKCE sign-in returns
``/console/config.json``  where the browser finds the admin, ingester and query module
``/console/static/<f>``   the app's own files and the vendored tus-js-client (fixed list)

Every answer carries a Content-Security-Policy with no inline script: scripts come from
this origin only; the browser talks to this origin and the two service URLs only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from artstore.admin.state import State
from artstore.common.errors import NotFound

PREFIX = "/console"
CLIENT_ID = "console"
STATIC = Path(__file__).parent / "static"

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


def _assets() -> dict[str, tuple[Path, str]]:
    """Every servable file, found once at import: no request path reaches the file system."""
    out: dict[str, tuple[Path, str]] = {}
    for path in sorted(STATIC.rglob("*")):
        kind = _TYPES.get(path.suffix)
        if path.is_file() and kind is not None and path.name != "index.html":
            out[path.relative_to(STATIC).as_posix()] = (path, kind)
    return out


ASSETS = _assets()
_cache: dict[str, bytes] = {}

router = APIRouter(include_in_schema=False)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def csp(ingester_url: str, query_url: str) -> str:
    services = " ".join(sorted({_origin(ingester_url), _origin(query_url)}))
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            f"connect-src 'self' {services}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def _headers(state: State, cache: str = "no-cache") -> dict[str, str]:
    s = state.settings
    return {
        "Content-Security-Policy": csp(s.ingester_public_url, s.query_public_url),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": cache,
    }


async def _read(name: str, path: Path) -> bytes:
    data = _cache.get(name)
    if data is None:
        data = await asyncio.to_thread(path.read_bytes)
        _cache[name] = data
    return data


@router.get(PREFIX)
async def console_root(request: Request) -> RedirectResponse:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{root}{PREFIX}/", status_code=307)


async def _page(state: State) -> Response:
    body = await _read("index.html", STATIC / "index.html")
    return Response(body, media_type=_TYPES[".html"], headers=_headers(state))


@router.get(PREFIX + "/")
async def console_page(state: State) -> Response:
    return await _page(state)


@router.get(PREFIX + "/callback")
async def console_callback(state: State) -> Response:
    return await _page(state)


@router.get(PREFIX + "/config.json")
async def console_config(state: State) -> JSONResponse:
    s = state.settings
    return JSONResponse(
        {
            "client_id": CLIENT_ID,
            "issuer": s.issuer,
            "ingester_url": s.ingester_public_url,
            "query_url": s.query_public_url,
            "access_token_ttl": s.access_token_ttl,
        },
        headers=_headers(state),
    )


@router.get(PREFIX + "/static/{name:path}")
async def console_asset(name: str, state: State) -> Response:
    found = ASSETS.get(name)
    if found is None:
        raise NotFound("no such file")
    path, kind = found
    return Response(await _read(name, path), media_type=kind, headers=_headers(state))
