"""upload / ls / rm (ingester + admin) and info / search / download / link (query):
success paths, unknown ids, bad credentials and services that are down."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import Cli, needs_query


def _upload(cli: Cli, *args: str) -> list[dict[str, Any]]:
    return list(json.loads(cli.ok("upload", *args, "--json").out))


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    f = tmp_path / f"report-{uuid.uuid4().hex[:6]}.txt"
    f.write_bytes(b"quarterly numbers\n" * 5000)
    return f


def test_upload_one_file(admin_cli: Cli, sample: Path) -> None:
    [meta] = _upload(admin_cli, str(sample), "--temporary", "--ttl", "3", "--description",
                     "q3", "-t", "finance", "-m", "dept=ops")  # fmt: skip
    assert meta["original_filename"] == sample.name and meta["size"] == sample.stat().st_size
    assert meta["checksum"] == "sha256:" + hashlib.sha256(sample.read_bytes()).hexdigest()
    assert meta["retention_policy"] == "temporary" and meta["ttl_days"] == 3
    assert meta["tags"] == ["finance"] and meta["metadata"] == {"dept": "ops"}
    assert meta["copies"][0]["storage_element_id"] == admin_cli.system.edit.id
    table = admin_cli.ok("upload", str(sample), "--permanent").out
    assert sample.name in table


def test_upload_folder(admin_cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("bb")
    metas = _upload(admin_cli, str(root), "--permanent")
    assert [m["original_filename"] for m in metas] == ["a.txt", "b.txt"]
    assert metas[1]["metadata"]["relative_path"] == "sub/b.txt"
    assert all(m["retention_policy"] == "permanent" for m in metas)
    ids = {m["file_id"] for m in metas}
    listed = json.loads(admin_cli.ok("ls", "--retention", "permanent", "--limit", "1000",
                                     "--json").out)  # fmt: skip
    assert ids <= {i["file_id"] for i in listed["items"]}


def test_upload_errors(cli: Cli, sample: Path, dead_url: str) -> None:
    cli("upload", str(sample)).one_error_line("NOT_LOGGED_IN")
    cli("upload", str(sample), ARTSTORE_TOKEN="bad").one_error_line("UNAUTHORIZED")
    cli.login_admin()
    cli("upload", str(sample.parent / "missing.bin")).one_error_line("NOT_FOUND")
    cli("upload", str(sample), ARTSTORE_INGESTER_URL=dead_url).one_error_line("CONNECTION_FAILED")
    cli("upload", str(sample), "--permanent", "--temporary").one_error_line("USAGE")
    auditor = cli.system.system.admin.create_user(["auditor"])
    other = Cli(cli.system, cli.config_dir.parent / "auditor")
    other.login_as(auditor["username"], auditor["password"])
    other("upload", str(sample)).one_error_line("FORBIDDEN")


def test_ls_and_rm(admin_cli: Cli, sample: Path, dead_url: str) -> None:
    [meta] = _upload(admin_cli, str(sample), "--temporary")
    fid = meta["file_id"]
    assert fid in admin_cli.ok("ls", "--se", admin_cli.system.edit.id, "--limit", "1000").out
    assert "deleted " + fid in admin_cli.ok("rm", fid).out
    admin_cli("rm", fid).one_error_line("FILE_GONE")
    admin_cli("rm", str(uuid.uuid4())).one_error_line("NOT_FOUND")
    listed = json.loads(admin_cli.ok("ls", "--status", "deleted", "--limit", "1000",
                                     "--json").out)  # fmt: skip
    assert fid in {i["file_id"] for i in listed["items"]}
    admin_cli("ls", ARTSTORE_ADMIN_URL=dead_url).one_error_line("CONNECTION_FAILED")


def test_rm_refused_by_mode(admin_cli: Cli, sample: Path) -> None:
    [meta] = _upload(admin_cli, str(sample), "--permanent")  # rw SE: no delete
    admin_cli("rm", meta["file_id"]).one_error_line("MODE_NOT_ALLOWED")


@needs_query
def test_info_search_download_link(admin_cli: Cli, sample: Path, tmp_path: Path) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"
    [meta] = _upload(admin_cli, str(sample), "--permanent", "-t", tag, "--description",
                     "the quarterly figures")  # fmt: skip
    fid = meta["file_id"]
    info = json.loads(admin_cli.ok("info", fid, "--json").out)
    assert info["file_id"] == fid and info["copies"]
    assert sample.name in admin_cli.ok("info", fid).out

    found = json.loads(admin_cli.ok("search", "--tag", tag, "--json").out)
    assert [i["file_id"] for i in found["items"]] == [fid]
    assert fid in admin_cli.ok("search", "--tag", tag).out
    assert fid in admin_cli.ok("search", "--filename", sample.name, "--match", "exact").out

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    res = json.loads(admin_cli.ok("download", fid, "-o", str(out_dir), "--json").out)
    assert Path(res["path"]) == out_dir / sample.name
    assert (out_dir / sample.name).read_bytes() == sample.read_bytes()
    assert not list(out_dir.glob("*.part*"))
    admin_cli("download", fid, "-o", str(out_dir)).one_error_line("EXISTS")
    admin_cli.ok("download", fid, "-o", str(out_dir), "--force")

    url = admin_cli.ok("link", fid, "--expires-in", "60").out.strip()
    r = httpx.get(url, timeout=30)
    assert r.status_code == 200 and r.content == sample.read_bytes()


@needs_query
def test_download_resumes_a_partial_file(admin_cli: Cli, sample: Path, tmp_path: Path) -> None:
    [meta] = _upload(admin_cli, str(sample), "--permanent")
    dest = tmp_path / "copy.txt"
    data = sample.read_bytes()
    # what an interrupted earlier run leaves: part of the bytes and their ETag
    dest.with_name("copy.txt.part").write_bytes(data[:1000])
    dest.with_name("copy.txt.part.json").write_text(
        json.dumps({"file_id": meta["file_id"], "etag": f'"{meta["checksum"][7:]}"'})
    )
    res = json.loads(admin_cli.ok("download", meta["file_id"], "-o", str(dest), "--json").out)
    assert res["resumed_from"] == 1000 and dest.read_bytes() == data


@needs_query
def test_query_errors(cli: Cli, dead_url: str, tmp_path: Path) -> None:
    unknown = str(uuid.uuid4())
    cli("info", unknown).one_error_line("NOT_LOGGED_IN")
    cli("search", "x", ARTSTORE_TOKEN="bad").one_error_line("UNAUTHORIZED")
    cli.login_admin()
    cli("info", unknown).one_error_line("NOT_FOUND")
    cli("download", unknown, "-o", str(tmp_path / "x")).one_error_line("NOT_FOUND")
    cli("link", unknown).one_error_line("NOT_FOUND")
    cli("search", "--min-size", "10", "--max-size", "1").one_error_line("VALIDATION_ERROR")
    for args in (["info", unknown], ["search", "x"], ["link", unknown],
                 ["download", unknown, "-o", str(tmp_path / "y")]):  # fmt: skip
        cli(*args, ARTSTORE_QUERY_URL=dead_url).one_error_line("CONNECTION_FAILED")
    assert not list(tmp_path.glob("x*")) and not list(tmp_path.glob("y*"))


@needs_query
def test_deleted_file(admin_cli: Cli, sample: Path, tmp_path: Path) -> None:
    [meta] = _upload(admin_cli, str(sample), "--temporary")
    admin_cli.ok("rm", meta["file_id"])
    assert json.loads(admin_cli.ok("info", meta["file_id"], "--json").out)["status"] == "deleted"
    admin_cli("download", meta["file_id"], "-o", str(tmp_path / "gone")).one_error_line("FILE_GONE")
