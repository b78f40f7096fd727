"""Presigned download URLs for the S3 backend (``SE_S3_PRESIGNED_DOWNLOADS``).

A download the SE may redirect (files/download.py decides) is answered with a 307 to a
SigV4 presigned ``GET`` of the blob's key, valid ``SE_S3_PRESIGNED_TTL`` seconds, that
makes S3 answer with the SE's own ``Content-Disposition`` (RFC 6266 name) and
``Content-Type``. The bytes then go from the bucket to the client: they are not
re-hashed on the way out (the scrubber still checks them at rest).

The URL names ``SE_S3_PUBLIC_ENDPOINT`` when set (clients may reach S3 at another
address than the SE does). SigV4 signs the host, so the URL is signed by a client of its
own configured with that endpoint; presigning is local computation, no request is made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError

from artstore.storage_element.settings import SESettings

log = logging.getLogger("artstore.storage_element.presign")
# What a presigned GET makes S3 answer with besides the bytes: the SE's own values.
CACHE_CONTROL = "private, no-transform"


class Presigner:
    """Makes presigned GET URLs for blobs of one SE (thread-safe: boto3 clients are)."""

    def __init__(self, client: Any, bucket: str, key_of: Callable[[str], str], ttl: int) -> None:
        self._client = client  # a boto3 S3 client: untyped (boto3 ships no stubs)
        self.bucket = bucket
        self.key_of = key_of
        self.ttl = ttl

    def url(self, storage_path: str, *, disposition: str, content_type: str) -> str | None:
        """The presigned URL of the blob at ``storage_path``; None when none can be made
        (no credentials: the download is streamed instead of failing). Blocking only when
        the credential chain must refresh: call it in a worker thread."""
        params = {
            "Bucket": self.bucket,
            "Key": self.key_of(storage_path),
            "ResponseContentDisposition": disposition,
            "ResponseContentType": content_type,
            "ResponseCacheControl": CACHE_CONTROL,
        }
        try:
            url = self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=self.ttl, HttpMethod="GET"
            )
        except BotoCoreError as exc:
            log.warning("cannot presign a download of %s (%s); streaming it", storage_path, exc)
            return None
        return str(url)


def make_presigner(settings: SESettings, key_of: Callable[[str], str]) -> Presigner:
    """The presigner of an S3 SE: the backend's client settings, with the public endpoint."""
    from artstore.storage_element.backends.s3 import make_client

    public = settings.s3_public_endpoint or settings.s3_endpoint_url
    client = make_client(settings.model_copy(update={"s3_endpoint_url": public}))
    return Presigner(client, settings.s3_bucket, key_of, settings.s3_presigned_ttl)


def presigner_of(backend: object) -> Presigner | None:
    """The backend's presigner, when it has one (an S3 backend with the setting on)."""
    found = getattr(backend, "presigner", None)
    return found if isinstance(found, Presigner) else None
