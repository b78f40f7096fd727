"""A copy made from an SE that answers downloads with presigned redirects (issue 16):
services that read a copy to write another (finalize here, tus replicas and repair the
same way) get the bytes streamed by the SE, never a 307 they would take for a failure."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.ingester.conftest import client, se_bytes, se_meta
from tests.support.process import ServiceProcess
from tests.support.se import S3_CAPACITY, StorageElementUnderTest
from tests.support.seaweed import SeaweedServer
from tests.support.system import System


@dataclass
class Setup:
    edit: StorageElementUnderTest
    rw: StorageElementUnderTest
    ingester: ServiceProcess


@pytest.fixture(scope="module")
def setup(system: System, seaweed: SeaweedServer) -> Iterator[Setup]:
    edit = system.add_se(
        "edit",
        **seaweed.s3_env(f"ig-{uuid.uuid4().hex[:8]}/"),
        SE_MAX_CAPACITY=str(S3_CAPACITY),
        SE_S3_PRESIGNED_DOWNLOADS="true",
    )
    rw = system.add_se("rw")
    yield Setup(edit, rw, system.start_ingester(IG_REPLICAS="1"))


def test_finalize_copies_from_a_presigning_se(setup: Setup, user_token: str) -> None:
    data = os.urandom(300_000)
    with client(setup.ingester, user_token) as c:
        up = c.post("/api/v1/files/upload", files={"file": ("draft.bin", data)})
        assert up.status_code == 201, up.text
        file_id = up.json()["file_id"]
        assert [x["storage_element_id"] for x in up.json()["copies"]] == [setup.edit.id]
    with setup.edit.client() as c:  # the temporary copy's SE does redirect downloads
        assert c.get(f"/api/v1/files/{file_id}/download").status_code == 307
    with client(setup.ingester, user_token) as c:
        done = c.post(f"/api/v1/files/{file_id}/finalize")
    assert done.status_code == 200, done.text
    assert [x["storage_element_id"] for x in done.json()["copies"]] == [setup.rw.id]
    assert se_bytes(setup.rw, file_id) == data
    temp_copy = se_meta(setup.edit, file_id)
    assert temp_copy is not None and temp_copy["status"] == "deleted"
