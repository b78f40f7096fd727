"""A stand-in token issuer for tests: an RSA key pair and its JWKS served over HTTP."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

ISSUER = "artstore-test"
AUDIENCE = "artstore"
ALL_SCOPES = (
    "files:read files:write files:delete storage:read storage:write "
    "admin:read admin:write audit:read"
)


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class KeyPair:
    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or uuid.uuid4().hex[:12]
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_pem = (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwk(self) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }


class TestIssuer:
    """Serves ``/.well-known/jwks.json`` on a loopback port and mints tokens."""

    __test__ = False

    def __init__(self) -> None:
        self.key = KeyPair()
        self.available = True
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/jwks.json" or not issuer.available:
                    self.send_response(503 if not issuer.available else 404)
                    self.end_headers()
                    return
                body = json.dumps({"keys": [issuer.key.jwk()]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def jwks_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/.well-known/jwks.json"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def claims(
        self, scopes: str = ALL_SCOPES, sub: str = "alice", ttl: int = 900, **extra: Any
    ) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "scope": scopes,
            "kind": "user",
            "name": sub,
            "roles": ["admin"],
            **extra,
        }

    def token(
        self,
        scopes: str = ALL_SCOPES,
        sub: str = "alice",
        ttl: int = 900,
        key: KeyPair | None = None,
        **extra: Any,
    ) -> str:
        signer = key or self.key
        return str(
            jwt.encode(
                self.claims(scopes, sub, ttl, **extra),
                signer.private_pem,
                algorithm="RS256",
                headers={"kid": signer.kid},
            )
        )

    def headers(self, scopes: str = ALL_SCOPES, sub: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(scopes, sub)}"}
