"""``artstore preview FILE_ID -o x.webp`` against the real services: the image once the
SE holds a preview, PREVIEW_PENDING while it does not, NO_PREVIEW for a type that never
gets one, a size the query does not serve, an existing output, and
``artstore preview-backfill`` queueing the backfill job."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.cli.conftest import Cli, needs_query


def _upload(cli: Cli, path: Path) -> dict[str, Any]:
    [meta] = json.loads(cli.ok("upload", str(path), "--permanent", "--json").out)
    return dict(meta)


def _webp(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 0, 0)).save(buf, "WEBP")
    return buf.getvalue()


@needs_query
def test_preview_command(admin_cli: Cli, tmp_path: Path) -> None:
    photo = tmp_path / f"photo-{uuid.uuid4().hex[:6]}.jpg"
    Image.new("RGB", (640, 480), (0, 0, 200)).save(photo, "JPEG")
    meta = _upload(admin_cli, photo)
    fid = meta["file_id"]
    out = tmp_path / "p.webp"
    line = admin_cli("preview", fid, "-o", str(out)).one_error_line("PREVIEW_PENDING")
    assert "not made yet" in line and not out.exists()
    admin_cli("preview", fid, "-o", str(out), "--size", "300").one_error_line("VALIDATION_ERROR")
    admin_cli("preview", str(uuid.uuid4()), "-o", str(out)).one_error_line("NOT_FOUND")

    # The worker's part, done by hand: a preview PUT on the SE holding the copy.
    held = {c["storage_element_id"] for c in meta["copies"]}
    [se] = [s for s in (admin_cli.system.edit, admin_cli.system.rw) if s.id in held]
    token = admin_cli.system.system.admin.sa_token(["storage:write", "files:read"])
    image = _webp(256, 192)
    r = httpx.put(
        f"{se.url}/api/v1/files/{fid}/previews/256",
        content=image,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "image/webp"},
        timeout=30,
    )
    assert r.status_code in (200, 201), r.text
    deadline = time.monotonic() + 30
    while True:  # the catalog learns of it by the SE's sync
        res = admin_cli("preview", fid, "-o", str(out), "--json")
        if res.code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert res.code == 0, res.err
    got = json.loads(res.out)
    assert got["path"] == str(out) and got["content_type"] == "image/webp"
    assert out.read_bytes() == image
    admin_cli("preview", fid, "-o", str(out)).one_error_line("EXISTS")
    text = admin_cli.ok("preview", fid, "-o", str(out), "--force").out
    assert str(out) in text and "image/webp" in text
    assert json.loads(admin_cli.ok("info", fid, "--json").out)["previews"] == [256]


@needs_query
def test_preview_of_a_type_without_previews(admin_cli: Cli, tmp_path: Path) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("plain text gets no preview\n")
    fid = _upload(admin_cli, doc)["file_id"]
    admin_cli("preview", fid, "-o", str(tmp_path / "n.webp")).one_error_line("NO_PREVIEW")
    assert not (tmp_path / "n.webp").exists()


def test_preview_needs_a_login(cli: Cli, tmp_path: Path) -> None:
    cli("preview", str(uuid.uuid4()), "-o", str(tmp_path / "x.webp")).one_error_line(
        "NOT_LOGGED_IN"
    )


def test_preview_backfill_queues_one_job(cli: Cli) -> None:
    url = cli.system.system.db.url
    first = cli.ok("preview-backfill", "--database-url", url).out
    assert "preview.backfill queued as job" in first or "already queued" in first
    again = cli.ok("preview-backfill", "--database-url", url).out
    assert "already queued" in again  # no worker runs here: the first one still waits
    cli.login_admin()
    runs = json.loads(cli.ok("jobs", "list", "--kind", "preview.backfill", "--json").out)
    assert any(r["state"] == "queued" for r in runs["items"])
