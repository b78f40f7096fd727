"""Python client of ArtStore (``artstore.client``): what the ``artstore`` CLI uses.

from artstore.client import Client, ClientConfig, UploadOptions

with Client(ClientConfig(token=...)) as c:
    meta = c.upload("report.pdf", UploadOptions(tags=["q3"]))
    c.download(meta.file_id, "copy.pdf")
"""

from artstore.client.client import AsyncClient, Client
from artstore.client.config import ClientConfig, RetryPolicy
from artstore.client.credentials import Credentials, CredentialStore, config_dir
from artstore.client.errors import (
    ApiError,
    ArtStoreClientError,
    AuthenticationError,
    BadRequestError,
    ChecksumMismatchError,
    ConflictError,
    GoneError,
    NotFoundError,
    NotLoggedInError,
    PermissionDeniedError,
    ServiceConnectionError,
    ServiceUnavailableError,
)
from artstore.client.files import UploadOptions
from artstore.client.models import (
    AuditEntry,
    FileMetadata,
    Link,
    Page,
    ServiceAccount,
    StorageElement,
    User,
)

__all__ = [
    "ApiError",
    "ArtStoreClientError",
    "AsyncClient",
    "AuditEntry",
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatchError",
    "Client",
    "ClientConfig",
    "ConflictError",
    "CredentialStore",
    "Credentials",
    "FileMetadata",
    "GoneError",
    "Link",
    "NotFoundError",
    "NotLoggedInError",
    "Page",
    "PermissionDeniedError",
    "RetryPolicy",
    "ServiceAccount",
    "ServiceConnectionError",
    "ServiceUnavailableError",
    "StorageElement",
    "UploadOptions",
    "User",
    "config_dir",
]
