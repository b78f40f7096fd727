"""Signing key material: RSA generation, JWK form, AES-GCM encryption at rest."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from artstore.admin.settings import AMSettings

log = logging.getLogger("artstore.admin.keys")

KEK_FILE_NAME = "key-encryption.key"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate_rsa(kid: str) -> tuple[bytes, dict[str, Any]]:
    """A new 2048-bit key: (private PEM, public JWK). CPU-bound: call it in a thread."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    numbers = private.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": _b64(numbers.n),
        "e": _b64(numbers.e),
    }
    return pem, jwk


class KeyEncryption:
    """AES-256-GCM with the key id as associated data (a blob cannot be swapped to
    another kid's row)."""

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(hashlib.sha256(secret).digest())

    def encrypt(self, kid: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, kid.encode())

    def decrypt(self, kid: str, blob: bytes) -> bytes:
        return self._aead.decrypt(blob[:12], blob[12:], kid.encode())


def load_key_encryption(settings: AMSettings) -> KeyEncryption:
    """From AM_KEY_ENCRYPTION_KEY, else AM_KEY_ENCRYPTION_KEY_FILE, else a generated file."""
    if settings.key_encryption_key:
        return KeyEncryption(settings.key_encryption_key.encode())
    if settings.key_encryption_key_file != Path(""):
        return KeyEncryption(settings.key_encryption_key_file.read_bytes().strip())
    path = settings.data_dir / KEK_FILE_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL + 0600: never readable by others, never overwritten by a second start.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
                fh.flush()
                os.fsync(fh.fileno())
        log.warning(
            "no AM_KEY_ENCRYPTION_KEY or AM_KEY_ENCRYPTION_KEY_FILE set: signing keys are "
            "encrypted with a generated key in %s; keep it safe or set one for production",
            path,
        )
    return KeyEncryption(path.read_bytes().strip())
