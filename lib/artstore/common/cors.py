"""Browser access across origins (CORS), set up once for the admin, ingester and query.

Who calls from a browser: the console (served by the admin at ``/console``, so at the
origin of the admin's public URL) calls the ingester (tus uploads from tus-js-client,
multipart) and the query module (search, downloads); and each service's Swagger UI gets
its token from the admin. Bearer tokens travel in ``Authorization``, never in cookies,
so credentials mode is off and ``*`` is never used: the origins are listed.

What is allowed and exposed is what those clients send and read (issue 17): tus-js-client
sends the tus request headers and must read ``Location``/``Upload-Offset`` back, a
download reads ``Content-Disposition``/``Content-Range``. Any header a browser does not
see exposed is invisible to the page, which is how uploads silently fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from artstore.common.settings import ServiceSettings

# The services of `artstore up` (and the compose file): their Swagger UI calls the admin.
LOCAL_SERVICE_PORTS = (8010, 8011, 8012, 8020, 8030)
LOCAL_SERVICE_ORIGINS = tuple(
    f"http://{host}:{port}" for host in ("127.0.0.1", "localhost") for port in LOCAL_SERVICE_PORTS
)

ALLOW_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
ALLOW_HEADERS = (
    "Accept",
    "Authorization",
    "Content-Type",
    "Range",  # a partial download (not CORS-safelisted: it is preflighted)
    "X-Requested-With",  # Swagger UI's token request, jQuery-style clients
    "X-Request-ID",
    # tus 1.0 (tus-js-client, tuspy)
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Offset",
    "Upload-Metadata",
    "Upload-Checksum",
    "Upload-Concat",
    "Upload-Defer-Length",
    "X-HTTP-Method-Override",
)
EXPOSE_HEADERS = (
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Expires",
    "X-File-ID",  # the id a tus upload or an upload got (ingester)
    "X-ArtStore-Storage-Element",  # which copy a download came from (query)
    "Content-Disposition",
    "Content-Range",
    "Content-Length",
    "Accept-Ranges",
    "ETag",
    "Retry-After",
    "X-Request-ID",
)
# How long a browser may reuse a preflight's answer, seconds.
MAX_AGE = 600


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL (default ports left out, as browsers
    send ``Origin``), or None."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def parse_origins(value: str) -> list[str]:
    """A comma-separated setting as a list of origins (trailing slashes dropped)."""
    return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]


def console_origins(configured: str, *admin_urls: str) -> list[str]:
    """The origins the ingester and query module answer: ``configured`` (``CORS_ORIGINS``)
    when set, else the admin's origins (the console's: its public URL, ``JWT_ISSUER``, and
    ``ADMIN_URL``) plus the services of ``artstore up`` (their Swagger UI)."""
    if configured.strip():
        return _unique(parse_origins(configured))
    admins = [o for o in (origin_of(u) for u in admin_urls) if o is not None]
    return _unique([*admins, *LOCAL_SERVICE_ORIGINS])


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def install_cors(app: FastAPI, origins: Iterable[str]) -> None:
    """Call last, after every other middleware: outermost, a preflight is answered before
    any layer (tus, body limits) looks at it, and every answer (errors too) carries the
    CORS headers. No origins: nothing is installed (same-origin only)."""
    allowed = list(origins)
    if not allowed:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=allowed,
        allow_methods=list(ALLOW_METHODS),
        allow_headers=list(ALLOW_HEADERS),
        expose_headers=list(EXPOSE_HEADERS),
        allow_credentials=False,
        max_age=MAX_AGE,
    )


def install_service_cors(app: FastAPI, settings: ServiceSettings) -> None:
    """The ingester's and query module's CORS: :func:`console_origins` of their settings."""
    install_cors(
        app, console_origins(settings.browser_origins, settings.jwt_issuer, settings.admin_url)
    )
