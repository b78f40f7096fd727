"""DEV-ONLY token issuer used by ``artstore up`` and ``artstore dev-token``.

The admin module (DESIGN §4) is the real token issuer; until it exists, local runs need
*something* that signs RS256 access tokens and serves the matching JWKS so a storage
element can verify them. This is that something, and nothing more:

* one RSA key, generated on first use and kept **unencrypted** (mode 0600) under
  ``<data_dir>/dev-issuer/``;
* ``GET /.well-known/jwks.json`` on a loopback port;
* a token for the subject ``dev`` with every scope, valid 12 hours.

Never use it outside a developer's machine: anyone who can read the key file can mint
tokens with every scope.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from artstore.common.auth import ALL_SCOPES

DEV_ISSUER = "artstore"
DEV_AUDIENCE = "artstore"
DEV_SUBJECT = "dev"
DEV_TOKEN_TTL = 12 * 3600
JWKS_PATH = "/.well-known/jwks.json"
KEY_FILE = "private-key.pem"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class DevKey:
    """The dev signing key: its PEM, its ``kid`` (RFC 7638 thumbprint) and its public JWK."""

    private_pem: str
    kid: str
    jwk: dict[str, str]

    @classmethod
    def from_pem(cls, pem: bytes) -> DevKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the dev issuer key is not an RSA key")
        numbers = key.public_key().public_numbers()
        e, n = _b64(numbers.e), _b64(numbers.n)
        canonical = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"))
        kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
        kid_s = kid.rstrip(b"=").decode()
        jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid_s, "n": n, "e": e}
        return cls(private_pem=pem.decode(), kid=kid_s, jwk=jwk)


def load_or_create_key(data_dir: Path) -> DevKey:
    """The key under ``<data_dir>/dev-issuer/``, generated (once) when missing."""
    folder = data_dir / "dev-issuer"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / KEY_FILE
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = folder / f".{KEY_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # a key made concurrently wins
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return DevKey.from_pem(path.read_bytes())


def dev_claims(ttl: int = DEV_TOKEN_TTL, sub: str = DEV_SUBJECT) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(ALL_SCOPES),
        "kind": "user",
        "name": f"{sub} (dev token)",
        "roles": ["admin"],
    }


def mint_token(key: DevKey, ttl: int = DEV_TOKEN_TTL, sub: str = DEV_SUBJECT) -> str:
    """A DEV-ONLY access token with every scope, signed RS256 with ``kid``."""
    token = jwt.encode(
        dev_claims(ttl, sub), key.private_pem, algorithm="RS256", headers={"kid": key.kid}
    )
    return str(token)


class JwksServer:
    """Serves the dev key's JWKS at ``JWKS_PATH`` from a daemon thread."""

    def __init__(self, key: DevKey, host: str, port: int) -> None:
        body = json.dumps({"keys": [key.jwk]}).encode()
        missing = json.dumps(
            {"error": {"code": "NOT_FOUND", "message": "the dev issuer serves only " + JWKS_PATH}}
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = self.path.split("?", 1)[0] == JWKS_PATH
                payload = body if found else missing
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)  # OSError if port taken
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dev-jwks", daemon=True
        )
        self._thread.start()
        self.url = f"http://{host}:{port}{JWKS_PATH}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
