"""``Client`` (sync) and ``AsyncClient``: the public face of :mod:`artstore.client`.

Both run the same :mod:`artstore.client.api` descriptions through a transport that adds
the token, renews it, retries and turns error answers into exceptions.
"""

from __future__ import annotations

import mimetypes
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from artstore.client import api
from artstore.client.config import ClientConfig
from artstore.client.errors import ApiError, ArtStoreClientError, NotFoundError
from artstore.client.files import (
    DownloadPlan,
    Progress,
    Source,
    UploadOptions,
    etag_sha256,
    interrupted,
    prepare_upload,
)
from artstore.client.http import AsyncTransport, Call, SyncTransport, TokenKeeper
from artstore.client.models import (
    AuditEntry,
    AuditVerify,
    DownloadResult,
    FileMetadata,
    GcResult,
    JobRun,
    Link,
    Me,
    ModeChange,
    Page,
    Purged,
    QuarantineListing,
    RebuildJob,
    ReconcileReport,
    RestoreAccepted,
    RotatedSecret,
    SEInfo,
    ServiceAccount,
    StorageElement,
    TokenSet,
    User,
)

T = TypeVar("T")
M = TypeVar("M")


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


class Client:
    """Synchronous client. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        on_tokens: Callable[[TokenSet], None] | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.config = config or ClientConfig.from_env()
        self.tokens = TokenKeeper(self.config, on_tokens)
        self.transport = SyncTransport(self.config, self.tokens, http)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def call(self, call: Call[T]) -> T:
        """Run any :mod:`artstore.client.api` description."""
        return self.transport.call(call)

    # -- auth ---------------------------------------------------------------------------
    def login(self, username: str, password: str) -> TokenSet:
        tokens = self.call(api.password_grant(username, password))
        self.tokens.client_id = self.tokens.client_secret = None
        self.tokens.apply(tokens)
        return tokens

    def login_client(self, client_id: str, client_secret: str) -> TokenSet:
        tokens = self.call(api.client_credentials_grant(client_id, client_secret))
        self.tokens.refresh_token = None
        self.tokens.client_id, self.tokens.client_secret = client_id, client_secret
        self.tokens.apply(tokens)
        return tokens

    def logout(self) -> None:
        """Revoke the refresh token (ends the session for every holder of it)."""
        if self.tokens.refresh_token:
            self.call(api.revoke(self.tokens.refresh_token))

    def me(self) -> Me:
        return self.call(api.me())

    # -- files --------------------------------------------------------------------------
    def upload(
        self,
        source: Source,
        options: UploadOptions | None = None,
        *,
        progress: Progress | None = None,
    ) -> FileMetadata:
        """Stream one file to the ingester; verifies the stored checksum."""
        prepared = prepare_upload(source, options or UploadOptions(), self.config.chunk_size,
                                  progress)  # fmt: skip
        return prepared.verify(self.call(prepared.call))

    def upload_resumable(
        self,
        path: str | Path,
        options: UploadOptions | None = None,
        *,
        progress: Progress | None = None,
        state_dir: Path | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> FileMetadata:
        """Upload with tus; ``state_dir`` remembers unfinished uploads across runs."""
        from artstore.client.tus import TusUpload

        path = Path(path)
        opts = options or UploadOptions()
        ctype = (
            opts.content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        result = TusUpload(self.transport, path, opts, ctype, chunk_size=chunk_size,
                           progress=progress, state_dir=state_dir).run()  # fmt: skip
        if isinstance(result, str):
            result = self.wait_for_file(result)
        return result

    def wait_for_file(self, file_id: str, timeout: float = 10.0) -> FileMetadata:
        """The query service reads the catalog, which the SE fills right before it
        answers; allow a moment for a copy whose catalog update was deferred."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.get_file(file_id)
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def get_file(self, file_id: str) -> FileMetadata:
        return self.call(api.get_file(file_id))

    def search(self, **filters: Any) -> Page[FileMetadata]:
        return self.call(api.search(filters))

    def list_files(self, **filters: Any) -> Page[FileMetadata]:
        return self.call(api.list_files(filters))

    def delete_file(self, file_id: str) -> None:
        self.call(api.delete_file(file_id))

    def create_link(self, file_id: str, expires_in: int | None = None) -> Link:
        return self.call(api.create_link(file_id, expires_in))

    def finalize(self, file_id: str) -> FileMetadata:
        return self.call(api.finalize(file_id))

    def download(
        self,
        file_id: str,
        dest: str | Path,
        *,
        progress: Progress | None = None,
        max_resumes: int = 3,
    ) -> DownloadResult:
        """Stream a file to ``dest`` (through ``dest.part``), resuming a partial file
        left by an earlier attempt, and verify its SHA-256 against the ETag."""
        plan = DownloadPlan(file_id, Path(dest), max_resumes, progress)
        part = plan.partial
        if part.complete() and part.sha.hexdigest() == etag_sha256(part.etag):
            return plan.finish()
        while True:
            try:
                with self.transport.open(plan.call()) as r:
                    plan.partial.begin(r)
                    for chunk in r.iter_bytes():  # as they arrive: a cut keeps every byte read
                        plan.chunk(chunk)
                break
            except ApiError as exc:
                if plan.on_api_error(exc):
                    continue
                raise
            except (httpx.TransportError, ArtStoreClientError) as exc:
                if not interrupted(exc):
                    plan.partial.close()
                    raise
                if not plan.on_interrupted(exc):
                    raise plan.interrupted_error(exc) from exc
                time.sleep(self.config.retry.delay(plan.interruptions - 1))
        return plan.finish()

    # -- storage elements ---------------------------------------------------------------
    def list_storage_elements(self, **filters: Any) -> Page[StorageElement]:
        return self.call(api.list_storage_elements(filters))

    def get_storage_element(self, storage_id: str) -> StorageElement:
        return self.call(api.get_storage_element(storage_id))

    def register_storage_element(
        self, url: str, name: str | None = None, storage_id: str | None = None
    ) -> StorageElement:
        """``storage_id``: the id the SE at ``url`` must answer with (409 otherwise)."""
        return self.call(api.register_storage_element(url, name, storage_id))

    def delete_storage_element(self, storage_id: str) -> None:
        self.call(api.delete_storage_element(storage_id))

    def refresh_storage_element(self, storage_id: str) -> StorageElement:
        return self.call(api.refresh_storage_element(storage_id))

    def change_mode(self, storage_id: str, target: str, confirm: bool = False) -> ModeChange:
        return self.call(api.change_mode(storage_id, target, confirm))

    def se_url(self, storage_id: str) -> str:
        return self.get_storage_element(storage_id).url

    def se_info(self, storage_id: str) -> SEInfo:
        return self.call(api.se_info(self.se_url(storage_id)))

    def se_status(self, storage_id: str) -> dict[str, Any]:
        return self.call(api.se_status(self.se_url(storage_id)))

    def reconcile(self, storage_id: str, deep: bool = False) -> ReconcileReport:
        return self.call(api.se_reconcile(self.se_url(storage_id), deep))

    def rebuild_index(self, storage_id: str) -> RebuildJob:
        return self.call(api.se_rebuild_index(self.se_url(storage_id)))

    def gc(self, storage_id: str) -> GcResult:
        return self.call(api.se_gc(self.se_url(storage_id)))

    # -- users --------------------------------------------------------------------------
    def list_users(self, limit: int = 100, offset: int = 0) -> Page[User]:
        return self.call(api.list_users(limit, offset))

    def get_user(self, user: str) -> User:
        """By id, or by username (looked up in the list)."""
        if is_uuid(user):
            return self.call(api.get_user(user))
        return _find(lambda o: self.list_users(1000, o), user, lambda u: [u.username], "user")

    def create_user(self, **fields: Any) -> User:
        return self.call(api.create_user(fields))

    def update_user(self, user: str, **fields: Any) -> User:
        return self.call(api.update_user(self.get_user(user).id, fields))

    def delete_user(self, user: str) -> None:
        self.call(api.delete_user(self.get_user(user).id))

    def unlock_user(self, user: str) -> None:
        self.call(api.unlock_user(self.get_user(user).id))

    def reset_password(self, user: str, new_password: str) -> None:
        self.call(api.reset_password(self.get_user(user).id, new_password))

    # -- service accounts ---------------------------------------------------------------
    def list_service_accounts(self, limit: int = 100, offset: int = 0) -> Page[ServiceAccount]:
        return self.call(api.list_service_accounts(limit, offset))

    def get_service_account(self, account: str) -> ServiceAccount:
        """By id, or by name or client id."""
        if is_uuid(account):
            return self.call(api.get_service_account(account))
        return _find(lambda o: self.list_service_accounts(1000, o), account,
                     lambda a: [a.name, a.client_id], "service account")  # fmt: skip

    def create_service_account(self, **fields: Any) -> ServiceAccount:
        return self.call(api.create_service_account(fields))

    def update_service_account(self, account: str, **fields: Any) -> ServiceAccount:
        sa_id = self.get_service_account(account).id
        return self.call(api.update_service_account(sa_id, fields))

    def delete_service_account(self, account: str) -> None:
        self.call(api.delete_service_account(self.get_service_account(account).id))

    def rotate_secret(self, account: str) -> RotatedSecret:
        return self.call(api.rotate_secret(self.get_service_account(account).id))

    # -- audit --------------------------------------------------------------------------
    def audit(self, **filters: Any) -> Page[AuditEntry]:
        return self.call(api.list_audit(filters))

    def verify_audit(self) -> AuditVerify:
        return self.call(api.verify_audit())

    # -- jobs ---------------------------------------------------------------------------
    def jobs(self, **filters: Any) -> Page[JobRun]:
        return self.call(api.list_jobs(filters))

    def job(self, job_id: int) -> JobRun:
        return self.call(api.get_job(job_id))

    def cancel_job(self, job_id: int) -> JobRun:
        return self.call(api.cancel_job(job_id))

    def retry_job(self, job_id: int) -> JobRun:
        return self.call(api.retry_job(job_id))

    # -- quarantine -----------------------------------------------------------------------
    def quarantine(self, **filters: Any) -> QuarantineListing:
        return self.call(api.list_quarantine(filters))

    def restore_quarantined(self, se: str, item: str) -> RestoreAccepted:
        return self.call(api.restore_quarantined(se, item))

    def purge_quarantined(self, se: str, item: str, confirm: str) -> Purged:
        return self.call(api.purge_quarantined(se, item, confirm))


def _find(
    fetch: Callable[[int], Page[M]], key: str, names: Callable[[M], list[str]], what: str
) -> M:
    offset = 0
    while True:
        batch = fetch(offset)
        for item in batch.items:
            if key in names(item):
                return item
        if not batch.has_more:
            raise NotFoundError(f"{what} {key!r} not found", code="NOT_FOUND", status=404)
        offset += len(batch.items)


class AsyncClient:
    """Asynchronous client with the same operations (resumable tus uploads are only in
    the sync :class:`Client`)."""

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        on_tokens: Callable[[TokenSet], None] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config or ClientConfig.from_env()
        self.tokens = TokenKeeper(self.config, on_tokens)
        self.transport = AsyncTransport(self.config, self.tokens, http)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def call(self, call: Call[T]) -> T:
        return await self.transport.call(call)

    async def login(self, username: str, password: str) -> TokenSet:
        tokens = await self.call(api.password_grant(username, password))
        self.tokens.client_id = self.tokens.client_secret = None
        self.tokens.apply(tokens)
        return tokens

    async def login_client(self, client_id: str, client_secret: str) -> TokenSet:
        tokens = await self.call(api.client_credentials_grant(client_id, client_secret))
        self.tokens.refresh_token = None
        self.tokens.client_id, self.tokens.client_secret = client_id, client_secret
        self.tokens.apply(tokens)
        return tokens

    async def me(self) -> Me:
        return await self.call(api.me())

    async def upload(
        self, source: Source, options: UploadOptions | None = None, *,
        progress: Progress | None = None,
    ) -> FileMetadata:  # fmt: skip
        prepared = prepare_upload(source, options or UploadOptions(), self.config.chunk_size,
                                  progress)  # fmt: skip
        return prepared.verify(await self.call(prepared.call))

    async def download(
        self, file_id: str, dest: str | Path, *, progress: Progress | None = None,
        max_resumes: int = 3,
    ) -> DownloadResult:  # fmt: skip
        import asyncio

        plan = DownloadPlan(file_id, Path(dest), max_resumes, progress)
        part = plan.partial
        if part.complete() and part.sha.hexdigest() == etag_sha256(part.etag):
            return await asyncio.to_thread(plan.finish)
        while True:
            try:
                async with self.transport.open(plan.call()) as r:
                    await asyncio.to_thread(plan.partial.begin, r)
                    async for chunk in r.aiter_bytes():
                        await asyncio.to_thread(plan.chunk, chunk)
                break
            except ApiError as exc:
                if plan.on_api_error(exc):
                    continue
                raise
            except (httpx.TransportError, ArtStoreClientError) as exc:
                if not interrupted(exc):
                    plan.partial.close()
                    raise
                if not plan.on_interrupted(exc):
                    raise plan.interrupted_error(exc) from exc
                await asyncio.sleep(self.config.retry.delay(plan.interruptions - 1))
        return await asyncio.to_thread(plan.finish)

    async def get_file(self, file_id: str) -> FileMetadata:
        return await self.call(api.get_file(file_id))

    async def search(self, **filters: Any) -> Page[FileMetadata]:
        return await self.call(api.search(filters))

    async def list_files(self, **filters: Any) -> Page[FileMetadata]:
        return await self.call(api.list_files(filters))

    async def delete_file(self, file_id: str) -> None:
        await self.call(api.delete_file(file_id))

    async def create_link(self, file_id: str, expires_in: int | None = None) -> Link:
        return await self.call(api.create_link(file_id, expires_in))

    async def finalize(self, file_id: str) -> FileMetadata:
        return await self.call(api.finalize(file_id))

    async def list_storage_elements(self, **filters: Any) -> Page[StorageElement]:
        return await self.call(api.list_storage_elements(filters))

    async def get_storage_element(self, storage_id: str) -> StorageElement:
        return await self.call(api.get_storage_element(storage_id))

    async def change_mode(self, storage_id: str, target: str, confirm: bool = False) -> ModeChange:
        return await self.call(api.change_mode(storage_id, target, confirm))

    async def reconcile(self, storage_id: str, deep: bool = False) -> ReconcileReport:
        url = (await self.get_storage_element(storage_id)).url
        return await self.call(api.se_reconcile(url, deep))

    async def rebuild_index(self, storage_id: str) -> RebuildJob:
        url = (await self.get_storage_element(storage_id)).url
        return await self.call(api.se_rebuild_index(url))

    async def gc(self, storage_id: str) -> GcResult:
        url = (await self.get_storage_element(storage_id)).url
        return await self.call(api.se_gc(url))

    async def list_users(self, limit: int = 100, offset: int = 0) -> Page[User]:
        return await self.call(api.list_users(limit, offset))

    async def create_user(self, **fields: Any) -> User:
        return await self.call(api.create_user(fields))

    async def list_service_accounts(
        self, limit: int = 100, offset: int = 0
    ) -> Page[ServiceAccount]:
        return await self.call(api.list_service_accounts(limit, offset))

    async def create_service_account(self, **fields: Any) -> ServiceAccount:
        return await self.call(api.create_service_account(fields))

    async def audit(self, **filters: Any) -> Page[AuditEntry]:
        return await self.call(api.list_audit(filters))

    async def verify_audit(self) -> AuditVerify:
        return await self.call(api.verify_audit())

    async def jobs(self, **filters: Any) -> Page[JobRun]:
        return await self.call(api.list_jobs(filters))

    async def job(self, job_id: int) -> JobRun:
        return await self.call(api.get_job(job_id))

    async def cancel_job(self, job_id: int) -> JobRun:
        return await self.call(api.cancel_job(job_id))

    async def retry_job(self, job_id: int) -> JobRun:
        return await self.call(api.retry_job(job_id))

    async def quarantine(self, **filters: Any) -> QuarantineListing:
        return await self.call(api.list_quarantine(filters))

    async def restore_quarantined(self, se: str, item: str) -> RestoreAccepted:
        return await self.call(api.restore_quarantined(se, item))

    async def purge_quarantined(self, se: str, item: str, confirm: str) -> Purged:
        return await self.call(api.purge_quarantined(se, item, confirm))


__all__ = ["AsyncClient", "Client", "is_uuid"]
