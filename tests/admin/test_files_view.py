"""The admin's files view (issue 14): a quarantined row records damage on one SE, not a
copy: it never speaks for its file nor is listed among the file's copies, the way the
query module's search treats it (a running admin over rows written into its catalog)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.admin import AdminUnderTest

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _copy(
    admin: AdminUnderTest,
    se: str,
    file_id: str,
    owner: str,
    *,
    description: str,
    age: int,
    status: str = "active",
    quarantined: bool = False,
) -> None:
    """One catalog row; a higher ``age`` is an older ``updated_at``."""
    admin.sql(
        "INSERT INTO catalog.files (storage_element_id, file_id, schema_version, storage_path, "
        "original_filename, content_type, size, checksum, uploaded_by, uploaded_at, "
        "updated_at, version, status, retention_policy, description, tags, metadata, "
        "meta_checksum, quarantined_at, quarantine_reason) VALUES ($1, $2::uuid, 1, "
        "'files/x', 'a.txt', 'text/plain', 1, 'sha256:00', $3, $4, $5, 1, $6, 'permanent', "
        "$7, ARRAY[]::text[], '{}'::jsonb, 'sha256:00', $8, $9)",
        se,
        file_id,
        owner,
        T0,
        T0 - timedelta(seconds=age),
        status,
        description,
        T0 if quarantined else None,
        "checksum mismatch" if quarantined else None,
    )


def _get(c: httpx.Client, path: str, **params: Any) -> httpx.Response:
    return c.get(path, params={k: v for k, v in params.items() if v is not None})


def test_quarantined_copy_neither_speaks_nor_is_listed(
    admin: AdminUnderTest, admin_token: str
) -> None:
    owner = f"q-{uuid.uuid4().hex[:8]}"
    bad_se, good_se = f"{owner}-bad", f"{owner}-good"
    damaged, lost = str(uuid.uuid4()), str(uuid.uuid4())
    # The quarantined copy is the newest: by preference alone it would speak.
    _copy(admin, bad_se, damaged, owner, description="damaged", age=0, quarantined=True)
    _copy(admin, good_se, damaged, owner, description="good", age=60)
    # A file whose only copy was quarantined is no file at all.
    _copy(admin, bad_se, lost, owner, description="lost", age=0, quarantined=True)

    with admin.client(admin_token) as c:
        one = _get(c, f"/api/v1/admin/files/{damaged}")
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["description"] == "good"
        assert body["storage_element_id"] == good_se
        assert body["copies"] == [{"storage_element_id": good_se, "status": "active"}]

        gone = _get(c, f"/api/v1/admin/files/{lost}")
        assert gone.status_code == 404, gone.text
        assert gone.json()["error"]["code"] == "NOT_FOUND"

        listed = _get(c, "/api/v1/admin/files", uploaded_by=owner).json()
        assert listed["total"] == 1
        assert [i["file_id"] for i in listed["items"]] == [damaged]
        assert listed["items"][0]["description"] == "good"
        assert listed["items"][0]["copies"] == [{"storage_element_id": good_se, "status": "active"}]

        # Filtering by an SE finds a file only through a copy that is one.
        view = "/api/v1/admin/files"
        on_bad = _get(c, view, uploaded_by=owner, storage_element_id=bad_se).json()
        assert on_bad["total"] == 0 and on_bad["items"] == []
        on_good = _get(c, view, uploaded_by=owner, storage_element_id=good_se).json()
        assert [i["file_id"] for i in on_good["items"]] == [damaged]


def test_live_copy_speaks_before_a_newer_tombstone(admin: AdminUnderTest, admin_token: str) -> None:
    owner = f"t-{uuid.uuid4().hex[:8]}"
    fid = str(uuid.uuid4())
    _copy(admin, f"{owner}-a", fid, owner, description="tomb", age=0, status="deleted")
    _copy(admin, f"{owner}-b", fid, owner, description="live", age=60)
    with admin.client(admin_token) as c:
        body = _get(c, f"/api/v1/admin/files/{fid}").json()
        assert body["description"] == "live"
        assert [x["storage_element_id"] for x in body["copies"]] == [f"{owner}-b", f"{owner}-a"]
        listed = _get(c, "/api/v1/admin/files", uploaded_by=owner).json()
        assert [i["description"] for i in listed["items"]] == ["live"]
        tombs = _get(c, "/api/v1/admin/files", uploaded_by=owner, status="deleted").json()
        assert tombs["total"] == 0  # the file is not deleted: a live copy speaks


def test_old_paths_are_deprecated_aliases(admin: AdminUnderTest, admin_token: str) -> None:
    """The view moved to /api/v1/admin/files (one owner per path behind the gateway); the
    old /api/v1/files paths answer the same for one release, marked deprecated."""
    owner = f"d-{uuid.uuid4().hex[:8]}"
    fid = str(uuid.uuid4())
    _copy(admin, f"{owner}-a", fid, owner, description="moved", age=0)
    with admin.client(admin_token) as c:
        new = _get(c, f"/api/v1/admin/files/{fid}").json()
        old = _get(c, f"/api/v1/files/{fid}").json()
        assert old == new and new["description"] == "moved"
        assert _get(c, "/api/v1/files", uploaded_by=owner).json()["total"] == 1
        paths = c.get("/openapi.json").json()["paths"]
    assert paths["/api/v1/files/{file_id}"]["get"]["deprecated"] is True
    assert paths["/api/v1/files"]["get"]["deprecated"] is True
    assert paths["/api/v1/files/{file_id}"]["delete"]["deprecated"] is True
    assert "deprecated" not in paths["/api/v1/admin/files/{file_id}"]["get"]
