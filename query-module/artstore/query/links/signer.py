"""Signed download links: HMAC-SHA256 over (file id, expiry), base64url (architecture §8).

Token bytes: version (1) | file id (16, UUID bytes) | expiry (8, Unix seconds, big
endian) | HMAC-SHA256 of the first 25 bytes (32). Any changed byte breaks the MAC;
the MAC is checked (in constant time) before anything else is read from the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from artstore.common.errors import ArtStoreError

VERSION = 1
_BODY = 1 + 16 + 8
_SIZE = _BODY + 32
SECRET_FILE = "link-secret"  # noqa: S105 - a file name


class InvalidLink(ArtStoreError):
    status, code = 403, "INVALID_LINK"


class LinkExpired(ArtStoreError):
    status, code = 410, "LINK_EXPIRED"


@dataclass(frozen=True)
class Link:
    file_id: str
    expires_at: int  # Unix seconds


class LinkSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the link secret must be at least 16 bytes")
        # A derived key: the configured secret is never used for anything else verbatim.
        self._key = hashlib.sha256(b"artstore-query-link-v1\0" + secret).digest()

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def sign(self, file_id: str, expires_at: int) -> str:
        body = bytes([VERSION]) + uuid.UUID(file_id).bytes + expires_at.to_bytes(8, "big")
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode()

    def verify(self, token: str, now: float) -> Link:
        """The link of a genuine token; InvalidLink if forged or altered, LinkExpired late."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidLink("the link is not valid") from exc
        if len(raw) != _SIZE or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
            # The re-encoding check refuses alternative spellings of the same bytes.
            raise InvalidLink("the link is not valid")
        body, mac = raw[:_BODY], raw[_BODY:]
        if not hmac.compare_digest(mac, self._mac(body)) or body[0] != VERSION:
            raise InvalidLink("the link is not valid")
        link = Link(str(uuid.UUID(bytes=body[1:17])), int.from_bytes(body[17:25], "big"))
        if link.expires_at <= now:
            raise LinkExpired("the link has expired", details={"expired_at": link.expires_at})
        return link


def load_secret(configured: str, data_dir: Path) -> bytes:
    """QM_LINK_SECRET, else a random secret generated once and kept 0600 in data_dir.

    Blocking file I/O: call it from a thread.
    """
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48).encode()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # fails if another instance won the race: use theirs
    except FileExistsError:
        secret = path.read_bytes().strip()
    finally:
        os.unlink(tmp)
    return secret
