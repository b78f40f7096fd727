"""``upload --resumable`` (tus) against the real ingester, and a tus upload cut after
its first chunk that a second run finishes from the server's offset."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from artstore.client import Client, ClientConfig, UploadOptions
from tests.cli.conftest import Cli, SystemUnderTest, needs_query


class Cut(Exception):
    pass


@needs_query
def test_cli_resumable_upload(admin_cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "big.bin"
    f.write_bytes(b"0123456789abcdef" * 100_000)
    [meta] = json.loads(admin_cli.ok("upload", str(f), "--resumable", "--permanent", "-t",
                                     "tus", "--json").out)  # fmt: skip
    assert meta["size"] == f.stat().st_size and meta["retention_policy"] == "permanent"
    assert meta["checksum"] == "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()
    assert meta["tags"] == ["tus"]
    assert not list((admin_cli.config_dir / "uploads").glob("*.json"))  # finished: forgotten


@needs_query
def test_interrupted_tus_upload_resumes(sut: SystemUnderTest, tmp_path: Path) -> None:
    token = sut.system.admin_token()
    cfg = ClientConfig(admin_url=sut.admin_url, ingester_url=sut.ingester_url,
                       query_url=sut.query_url, token=token)  # fmt: skip
    f = tmp_path / "cut.bin"
    data = bytes(range(256)) * 2000  # 512000 bytes, 8 chunks of 64 KiB
    f.write_bytes(data)
    state = tmp_path / "state"

    def cut_after_first(done: int, _total: int | None) -> None:
        if done >= 65536:
            raise Cut

    with Client(cfg) as c:
        with pytest.raises(Cut):
            c.upload_resumable(f, UploadOptions(), progress=cut_after_first, state_dir=state,
                               chunk_size=65536)  # fmt: skip
        assert list((state / "uploads").glob("*.json"))  # the upload URL is remembered
        meta = c.upload_resumable(f, UploadOptions(), state_dir=state, chunk_size=65536)
        assert meta.size == len(data) and meta.sha256 == hashlib.sha256(data).hexdigest()
        out = tmp_path / "back.bin"
        c.download(meta.file_id, out)
    assert out.read_bytes() == data
    assert not list((state / "uploads").glob("*.json"))
