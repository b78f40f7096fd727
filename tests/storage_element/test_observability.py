"""Health, metrics and request ids of a running storage element."""

from __future__ import annotations

import httpx

from tests.support.se import StorageElementUnderTest


def test_health_and_metrics(rw_se: StorageElementUnderTest) -> None:
    live = httpx.get(f"{rw_se.url}/health/live").json()
    assert live["status"] == "ok" and live["service"] == "storage_element"
    ready = httpx.get(f"{rw_se.url}/health/ready")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert {"backend", "wal", "catalog", "recovery"} <= set(checks)
    assert all(c["status"] == "ok" for c in checks.values())

    with rw_se.client() as c:
        fid = c.post("/api/v1/files", content=b"m", params={"filename": "m"}).json()["file_id"]
        c.get(f"/api/v1/files/{fid}")
    text = httpx.get(f"{rw_se.url}/metrics").text
    assert (
        'artstore_http_requests_total{method="GET",route="/api/v1/files/{file_id}",'
        'service="storage_element",status="200"} 1.0' in text
    )
    assert 'route="/api/v1/files",service="storage_element",status="201"' in text
    assert "artstore_storage_element_files 1.0" in text
    assert 'artstore_storage_element_mode{mode="rw"} 1.0' in text
    assert "artstore_storage_element_wal_failed 0.0" in text
    assert "artstore_storage_element_recovery_set_aside 0.0" in text


def test_request_id_is_echoed_or_made(rw_se: StorageElementUnderTest) -> None:
    given = httpx.get(f"{rw_se.url}/api/v1/info", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = httpx.get(f"{rw_se.url}/api/v1/info")
    assert len(made.headers["x-request-id"]) == 32
    bad = httpx.get(f"{rw_se.url}/api/v1/info", headers={"X-Request-ID": "x" * 500})
    assert bad.headers["x-request-id"] != "x" * 500
    assert '"request_id": "abc-123"' in rw_se.process.log()


def test_unauthenticated_error_envelope(rw_se: StorageElementUnderTest) -> None:
    r = httpx.get(f"{rw_se.url}/api/v1/files")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"]["code"] == "UNAUTHORIZED"
    missing = httpx.get(f"{rw_se.url}/no/such/route")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
