"""Every JSON operation of the public APIs, described once as a :class:`Call`.

The services: admin (§4, §6), ingester (§7), query (§8) and, for maintenance only, an
SE directly at the URL the admin's registry gives (§5.5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from artstore.client.http import Call
from artstore.client.models import (
    AuditEntry,
    AuditVerify,
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

M = TypeVar("M", bound=BaseModel)


def model(cls: type[M]) -> Callable[[httpx.Response], M]:
    return lambda r: cls.model_validate(r.json())


def page(cls: type[M]) -> Callable[[httpx.Response], Page[M]]:
    return lambda r: Page[cls].model_validate(r.json())  # type: ignore[valid-type]


def raw_json(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    return body if isinstance(body, dict) else {"value": body}


def nothing(_: httpx.Response) -> None:
    return None


def _p(value: str) -> str:
    return quote(str(value), safe="")


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -- auth ---------------------------------------------------------------------------------
def password_grant(username: str, password: str) -> Call[TokenSet]:
    form = {"grant_type": "password", "username": username, "password": password}
    return Call("POST", "admin", "/api/v1/auth/token", model(TokenSet), data=form,
                auth=False, idempotent=False)  # fmt: skip


def client_credentials_grant(client_id: str, client_secret: str) -> Call[TokenSet]:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
    }
    return Call("POST", "admin", "/api/v1/auth/token", model(TokenSet), data=form,
                auth=False, idempotent=False)  # fmt: skip


def revoke(token: str) -> Call[None]:
    return Call("POST", "admin", "/api/v1/auth/revoke", nothing, data={"token": token},
                auth=False, idempotent=True)  # fmt: skip


def me() -> Call[Me]:
    return Call("GET", "admin", "/api/v1/auth/me", model(Me))


# -- files --------------------------------------------------------------------------------
def get_file(file_id: str) -> Call[FileMetadata]:
    return Call("GET", "query", f"/api/v1/files/{_p(file_id)}", model(FileMetadata))


def search(filters: Mapping[str, Any]) -> Call[Page[FileMetadata]]:
    # A search reads only, so repeating it on 503 is safe although it is a POST.
    return Call("POST", "query", "/api/v1/search", page(FileMetadata), json=_clean(filters),
                idempotent=True)  # fmt: skip


def list_files(filters: Mapping[str, Any]) -> Call[Page[FileMetadata]]:
    return Call("GET", "admin", "/api/v1/admin/files", page(FileMetadata), params=_clean(filters))


def delete_file(file_id: str) -> Call[None]:
    return Call("DELETE", "admin", f"/api/v1/admin/files/{_p(file_id)}", nothing)


def create_link(file_id: str, expires_in: int | None = None) -> Call[Link]:
    body = _clean({"expires_in": expires_in})
    return Call("POST", "query", f"/api/v1/files/{_p(file_id)}/link", model(Link), json=body)


def finalize(file_id: str) -> Call[FileMetadata]:
    return Call("POST", "ingester", f"/api/v1/files/{_p(file_id)}/finalize",
                model(FileMetadata), idempotent=False, timeout=3600)  # fmt: skip


# -- storage elements ---------------------------------------------------------------------
SE_PATH = "/api/v1/storage-elements"


def list_storage_elements(filters: Mapping[str, Any]) -> Call[Page[StorageElement]]:
    return Call("GET", "admin", SE_PATH, page(StorageElement), params=_clean(filters))


def get_storage_element(storage_id: str) -> Call[StorageElement]:
    return Call("GET", "admin", f"{SE_PATH}/{_p(storage_id)}", model(StorageElement))


def register_storage_element(
    url: str, name: str | None = None, storage_id: str | None = None
) -> Call[StorageElement]:
    body = _clean({"url": url, "name": name, "storage_id": storage_id})
    return Call("POST", "admin", SE_PATH, model(StorageElement), json=body)


def delete_storage_element(storage_id: str) -> Call[None]:
    return Call("DELETE", "admin", f"{SE_PATH}/{_p(storage_id)}", nothing)


def refresh_storage_element(storage_id: str) -> Call[StorageElement]:
    return Call("POST", "admin", f"{SE_PATH}/{_p(storage_id)}/refresh", model(StorageElement),
                idempotent=True)  # fmt: skip


def change_mode(storage_id: str, target_mode: str, confirm: bool = False) -> Call[ModeChange]:
    body = {"target_mode": target_mode, "confirm": confirm}
    return Call("POST", "admin", f"{SE_PATH}/{_p(storage_id)}/mode", model(ModeChange), json=body)


def se_info(se_url: str) -> Call[SEInfo]:
    return Call("GET", "storage element", "/api/v1/info", model(SEInfo), base_url=se_url,
                auth=False)  # fmt: skip


def se_status(se_url: str) -> Call[dict[str, Any]]:
    return Call("GET", "storage element", "/api/v1/maintenance/status", raw_json,
                base_url=se_url)  # fmt: skip


def se_reconcile(se_url: str, deep: bool = False) -> Call[ReconcileReport]:
    return Call("POST", "storage element", "/api/v1/maintenance/reconcile",
                model(ReconcileReport), params={"deep": "true"} if deep else None,
                base_url=se_url, timeout=3600)  # fmt: skip


def se_rebuild_index(se_url: str) -> Call[RebuildJob]:
    return Call("POST", "storage element", "/api/v1/maintenance/rebuild-index",
                model(RebuildJob), base_url=se_url)  # fmt: skip


def se_gc(se_url: str) -> Call[GcResult]:
    return Call("POST", "storage element", "/api/v1/maintenance/gc", model(GcResult),
                base_url=se_url, timeout=3600)  # fmt: skip


# -- users --------------------------------------------------------------------------------
def list_users(limit: int = 100, offset: int = 0) -> Call[Page[User]]:
    params = {"limit": limit, "offset": offset}
    return Call("GET", "admin", "/api/v1/users", page(User), params=params)


def get_user(user_id: str) -> Call[User]:
    return Call("GET", "admin", f"/api/v1/users/{_p(user_id)}", model(User))


def create_user(fields: Mapping[str, Any]) -> Call[User]:
    return Call("POST", "admin", "/api/v1/users", model(User), json=_clean(fields))


def update_user(user_id: str, fields: Mapping[str, Any]) -> Call[User]:
    return Call("PATCH", "admin", f"/api/v1/users/{_p(user_id)}", model(User), json=_clean(fields))


def delete_user(user_id: str) -> Call[None]:
    return Call("DELETE", "admin", f"/api/v1/users/{_p(user_id)}", nothing)


def unlock_user(user_id: str) -> Call[None]:
    return Call("POST", "admin", f"/api/v1/users/{_p(user_id)}/unlock", nothing, idempotent=True)


def reset_password(user_id: str, new_password: str) -> Call[None]:
    return Call("POST", "admin", f"/api/v1/users/{_p(user_id)}/reset-password", nothing,
                json={"new_password": new_password})  # fmt: skip


# -- service accounts ---------------------------------------------------------------------
SA_PATH = "/api/v1/service-accounts"


def list_service_accounts(limit: int = 100, offset: int = 0) -> Call[Page[ServiceAccount]]:
    params = {"limit": limit, "offset": offset}
    return Call("GET", "admin", SA_PATH, page(ServiceAccount), params=params)


def get_service_account(sa_id: str) -> Call[ServiceAccount]:
    return Call("GET", "admin", f"{SA_PATH}/{_p(sa_id)}", model(ServiceAccount))


def create_service_account(fields: Mapping[str, Any]) -> Call[ServiceAccount]:
    return Call("POST", "admin", SA_PATH, model(ServiceAccount), json=_clean(fields))


def update_service_account(sa_id: str, fields: Mapping[str, Any]) -> Call[ServiceAccount]:
    return Call("PATCH", "admin", f"{SA_PATH}/{_p(sa_id)}", model(ServiceAccount),
                json=_clean(fields))  # fmt: skip


def delete_service_account(sa_id: str) -> Call[None]:
    return Call("DELETE", "admin", f"{SA_PATH}/{_p(sa_id)}", nothing)


def rotate_secret(sa_id: str) -> Call[RotatedSecret]:
    return Call("POST", "admin", f"{SA_PATH}/{_p(sa_id)}/rotate-secret", model(RotatedSecret),
                idempotent=False)  # fmt: skip


# -- audit --------------------------------------------------------------------------------
def list_audit(filters: Mapping[str, Any]) -> Call[Page[AuditEntry]]:
    return Call("GET", "admin", "/api/v1/audit", page(AuditEntry), params=_clean(filters))


def verify_audit() -> Call[AuditVerify]:
    return Call("GET", "admin", "/api/v1/audit/verify", model(AuditVerify), timeout=600)


# -- jobs ---------------------------------------------------------------------------------
JOBS_PATH = "/api/v1/jobs"


def list_jobs(filters: Mapping[str, Any]) -> Call[Page[JobRun]]:
    return Call("GET", "admin", JOBS_PATH, page(JobRun), params=_clean(filters))


def get_job(job_id: int) -> Call[JobRun]:
    return Call("GET", "admin", f"{JOBS_PATH}/{int(job_id)}", model(JobRun))


def cancel_job(job_id: int) -> Call[JobRun]:
    return Call("POST", "admin", f"{JOBS_PATH}/{int(job_id)}/cancel", model(JobRun),
                idempotent=False)  # fmt: skip


def retry_job(job_id: int) -> Call[JobRun]:
    return Call("POST", "admin", f"{JOBS_PATH}/{int(job_id)}/retry", model(JobRun),
                idempotent=False)  # fmt: skip


# -- quarantine ---------------------------------------------------------------------------
QUARANTINE_PATH = "/api/v1/quarantine"


def list_quarantine(filters: Mapping[str, Any]) -> Call[QuarantineListing]:
    return Call("GET", "admin", QUARANTINE_PATH, model(QuarantineListing), params=_clean(filters))


def restore_quarantined(se: str, item: str) -> Call[RestoreAccepted]:
    return Call("POST", "admin", f"{QUARANTINE_PATH}/{_p(se)}/{_p(item)}/restore",
                model(RestoreAccepted), idempotent=False)  # fmt: skip


def purge_quarantined(se: str, item: str, confirm: str) -> Call[Purged]:
    return Call("POST", "admin", f"{QUARANTINE_PATH}/{_p(se)}/{_p(item)}/purge", model(Purged),
                json={"confirm": confirm}, idempotent=False)  # fmt: skip
