"""The admin's sign-in page (the authorization endpoint's face): server-rendered HTML,
no script, no external asset. Its one stylesheet is inline and allowed by its hash in
the Content-Security-Policy, so the policy can forbid everything else."""

from __future__ import annotations

import base64
import hashlib
from html import escape

from fastapi.responses import HTMLResponse

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:#f4f5f7;color:#1d1f23}
main{max-width:24rem;margin:8vh auto;padding:1.5rem;background:#fff;border-radius:8px;
box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.4rem;margin:0 0 .25rem}
p{margin:.25rem 0 1rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{width:100%;padding:.6rem;font:inherit;border:1px solid #8a8f98;border-radius:4px}
input:focus,button:focus{outline:3px solid #1a5fb4;outline-offset:1px}
button{margin-top:1.25rem;width:100%;padding:.7rem;font:inherit;font-weight:600;
color:#fff;background:#1a5fb4;border:0;border-radius:4px;cursor:pointer}
.error{padding:.6rem;border-left:4px solid #c01c28;background:#fdecee;color:#7a0b14}
.muted{color:#4d525a;font-size:.9rem}
@media (max-width:30rem){main{margin:0;border-radius:0;box-shadow:none;min-height:100vh}}
"""
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()


def _headers(form_targets: str) -> dict[str, str]:
    csp = (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; "
        # Chromium checks form-action on the redirect that follows the POST too: the
        # client's redirect URI must be allowed, or the browser stops at the code.
        f"form-action 'self' {form_targets}; frame-ancestors 'none'; base-uri 'none'"
    ).replace("  ", " ")
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · ArtStore</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def sign_in_page(
    *,
    sealed: str,
    client_name: str,
    redirect_origin: str,
    username: str = "",
    message: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    alert = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    focus_user = "" if username else " autofocus"
    body = (
        "<h1>Sign in to ArtStore</h1>"
        f'<p class="muted">to continue to the {escape(client_name)}</p>'
        f"{alert}"
        # Relative action: the page works under whatever prefix a proxy serves it.
        '<form method="post" action="authorize" autocomplete="on">'
        f'<input type="hidden" name="request" value="{escape(sealed)}">'
        '<label for="username">Username</label>'
        '<input id="username" name="username" type="text" autocomplete="username" '
        f'autocapitalize="none" spellcheck="false" maxlength="64" required{focus_user} '
        f'value="{escape(username)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        f'autocomplete="current-password" required{"" if focus_user else " autofocus"}>'
        '<button type="submit">Sign in</button>'
        "</form>"
    )
    return HTMLResponse(
        _document("Sign in", body),
        status_code=status,
        headers={**_headers(redirect_origin), **(headers or {})},
    )


def error_page(message: str, status: int = 400) -> HTMLResponse:
    """For errors that must not go back to the client (RFC 6749 §4.1.2.1): an unknown
    client or a redirect URI that is not registered is never redirected to."""
    body = (
        "<h1>Sign-in cannot continue</h1>"
        f'<p class="error" role="alert">{escape(message)}</p>'
        '<p class="muted">Go back to the application and start the sign-in again.</p>'
    )
    return HTMLResponse(_document("Sign-in error", body), status_code=status, headers=_headers(""))
