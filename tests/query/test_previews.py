"""``GET /api/v1/files/{id}/preview`` answers decided by the catalog and the job history
alone (docs/previews.md "Query"): 202 while a preview may still be made, 404 NO_PREVIEW
for a type that never gets one or a file whose preview.make failed or was skipped, 400
for a size not served, 401/403 without a token or files:read, 404/410 as metadata and
downloads. The 200/304 answers (an SE holding the preview) are in
tests/worker/test_previews_e2e.py."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.query.conftest import Catalog, SearchQuery

SHA = "sha256:" + "0" * 64


def _get(qm: SearchQuery, fid: str, scopes: str = "files:read", **params: str | int) -> Any:
    with qm.client(scopes) as c:
        return c.get(f"/api/v1/files/{fid}/preview", params=params)


def _run(qm: SearchQuery, fid: str, state: str, **fields: object) -> None:
    """A preview.make run of ``fid`` in the job history, as the worker records it."""
    summary = fields.pop("summary", None)
    qm.sql(
        "INSERT INTO jobs.runs (kind, state, target, args, queued_at, finished_at, error,"
        " summary) VALUES ('preview.make', $1, $2, $3, now(), now(), $4, $5)",
        state,
        fid,
        json.dumps({"file_id": fid}),
        fields.get("error"),
        json.dumps(summary) if summary is not None else None,
    )


def test_a_previewable_file_without_previews_is_pending(catalog: Catalog) -> None:
    fid = catalog.put("photo.jpg", content_type="image/jpeg")
    r = _get(catalog.qm, fid, size=256)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending"
    assert r.headers["retry-after"].isdigit()
    # the default size is the smallest served
    r = _get(catalog.qm, fid)
    assert r.status_code == 202 and r.json()["size"] == 256
    # a queued or running run: still pending
    _run(catalog.qm, fid, "running")
    assert _get(catalog.qm, fid, size=1024).status_code == 202


def test_a_type_without_previews_is_no_preview(catalog: Catalog) -> None:
    fid = catalog.put("data.zip", content_type="application/zip")
    r = _get(catalog.qm, fid, size=256)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "NO_PREVIEW"


def test_a_failed_or_skipped_make_is_no_preview(catalog: Catalog) -> None:
    bomb = catalog.put("bomb.png", content_type="image/png")
    _run(catalog.qm, bomb, "failed", error="PreviewRefused: 100000x100000 pixels is over")
    r = _get(catalog.qm, bomb, size=256)
    assert r.status_code == 404, r.text
    body = r.json()["error"]
    assert body["code"] == "NO_PREVIEW" and "pixels" in body["message"]
    huge = catalog.put("huge.tif", content_type="image/tiff")
    _run(catalog.qm, huge, "succeeded", summary={"result": "skipped", "reason": "too big"})
    r = _get(catalog.qm, huge, size=1024)
    assert r.status_code == 404 and "too big" in r.text
    # a cancelled run does not count: it may be made again
    again = catalog.put("again.png", content_type="image/png")
    _run(catalog.qm, again, "cancelled")
    assert _get(catalog.qm, again, size=256).status_code == 202


@pytest.mark.parametrize("size", ["512", "0", "-1", "abc", "99999999999", "256.5"])
def test_a_size_not_served_is_a_client_error(catalog: Catalog, size: str) -> None:
    fid = catalog.put("photo.jpg", content_type="image/jpeg")
    r = _get(catalog.qm, fid, size=size)
    assert r.status_code in (400, 422), r.text


def test_unknown_gone_and_bad_ids(catalog: Catalog) -> None:
    r = _get(catalog.qm, str(uuid.uuid4()), size=256)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    gone = catalog.put("gone.jpg", content_type="image/jpeg", status="deleted")
    assert _get(catalog.qm, gone, size=256).status_code == 410
    assert _get(catalog.qm, "not-a-uuid", size=256).status_code in (400, 422)


def test_token_and_scope_are_required(catalog: Catalog) -> None:
    fid = catalog.put("photo.jpg", content_type="image/jpeg")
    assert _get(catalog.qm, fid, scopes="", size=256).status_code == 401
    assert _get(catalog.qm, fid, scopes="files:write", size=256).status_code == 403


def test_metadata_and_search_say_which_previews_exist(catalog: Catalog) -> None:
    fid = catalog.put("shown.jpg", content_type="image/jpeg", previews=[256, 1024])
    with catalog.qm.client() as c:
        meta = c.get(f"/api/v1/files/{fid}").json()
    assert meta["previews"] == [256, 1024]
    items = catalog.search(filename="shown.jpg")["items"]
    assert [i["previews"] for i in items] == [[256, 1024]]
    none = catalog.put("none.jpg", content_type="image/jpeg")
    with catalog.qm.client() as c:
        assert c.get(f"/api/v1/files/{none}").json()["previews"] == []


def test_signed_link_preview_checks_the_signature(catalog: Catalog) -> None:
    with catalog.qm.client("") as c:
        r = c.get("/api/v1/links/not-a-valid-token/preview", params={"size": 256})
    assert r.status_code in (400, 401, 403, 404), r.text


def test_query_and_worker_use_the_one_list_of_previewable_types() -> None:
    from artstore.contracts import files as contracts
    from artstore.query.previews import service as query
    from artstore.worker.previews import service as worker

    assert query.is_previewable is contracts.is_previewable
    assert worker.is_previewable is contracts.is_previewable
    assert worker.PREVIEWABLE_TYPES is contracts.PREVIEWABLE_TYPES
