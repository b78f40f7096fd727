"""Presigned download URLs (backends/s3_presign.py) and their settings, without a server:
presigning is local computation (SigV4), so a real boto3 client makes them here."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from pydantic import ValidationError

from artstore.storage_element.backends.s3_presign import Presigner, make_presigner, presigner_of
from artstore.storage_element.files.download import content_disposition
from artstore.storage_element.settings import SESettings

S3 = {
    "backend": "s3",
    "max_capacity": 10**9,
    "s3_endpoint_url": "http://127.0.0.1:9",
    "s3_bucket": "bkt",
    "s3_prefix": "se-9/",
    "s3_access_key_id": "AKIDEXAMPLE",
    "s3_secret_access_key": "secret",
}


def _settings(tmp_path: Path, **kw: object) -> SESettings:
    return SESettings.model_validate({"data_dir": tmp_path, **S3, **kw})


def test_settings_bounds_and_refusals(tmp_path: Path) -> None:
    assert _settings(tmp_path).s3_presigned_ttl == 300
    for bad in (0, -1, 7 * 86400 + 1):
        with pytest.raises(ValidationError, match="s3_presigned_ttl"):
            _settings(tmp_path, s3_presigned_ttl=bad)
    for endpoint in ("ftp://s3.example", "s3.example:9000", "http://"):
        with pytest.raises(ValidationError, match="SE_S3_PUBLIC_ENDPOINT"):
            _settings(tmp_path, s3_public_endpoint=endpoint)
    with pytest.raises(ValidationError, match="needs SE_BACKEND=s3"):
        SESettings.model_validate({"data_dir": tmp_path, "s3_presigned_downloads": True})


def test_url_names_the_public_endpoint_the_key_and_the_answer(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        s3_presigned_downloads=True,
        s3_presigned_ttl=42,
        s3_public_endpoint="https://files.example.org",
    )
    presigner = make_presigner(settings, lambda path: f"se-9/{path}")
    name = 'Отчёт "Q3".pdf'
    url = presigner.url(
        "2026/12/03/10/x_alice_20261203T100000_abcd1234.pdf",
        disposition=content_disposition(name),
        content_type="application/pdf",
    )
    assert url is not None
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "files.example.org")
    assert unquote(parts.path) == "/bkt/se-9/2026/12/03/10/x_alice_20261203T100000_abcd1234.pdf"
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == ["42"]
    assert query["response-content-disposition"] == [content_disposition(name)]
    assert query["response-content-type"] == ["application/pdf"]
    assert query["response-cache-control"] == ["private, no-transform"]
    assert "X-Amz-Signature" in query


def test_without_credentials_no_url_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty credential chain: no keys, no files, no instance metadata.
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = _settings(
        tmp_path, s3_presigned_downloads=True, s3_access_key_id="", s3_secret_access_key=""
    )
    presigner = make_presigner(settings, lambda path: path)
    assert presigner.url("2026/a.bin", disposition="attachment", content_type="x/y") is None


def test_presigner_of_finds_only_a_presigner(tmp_path: Path) -> None:
    class WithOne:
        presigner = make_presigner(_settings(tmp_path), lambda path: path)

    class WithNone:
        presigner = None

    assert isinstance(presigner_of(WithOne()), Presigner)
    assert presigner_of(WithNone()) is None
    assert presigner_of(object()) is None
