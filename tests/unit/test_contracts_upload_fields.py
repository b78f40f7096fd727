"""Upload field names written once (issue 14): the SE takes exactly the contract's
fields, and the ingester forwards every one of them under the same name."""

from __future__ import annotations

import dataclasses
import uuid

from artstore.contracts.se import UPLOAD_FIELDS
from artstore.ingester.uploads.fields import IngestFields
from artstore.storage_element.files.fields import UploadFields

_VALUES = {
    "filename": "a.txt",
    "description": "d",
    "tags": '["x"]',
    "metadata": '{"k": "v"}',
    "retention_policy": "temporary",
    "ttl_days": "7",
    "file_id": str(uuid.uuid4()),
}


def test_the_se_takes_every_contract_field_and_no_other() -> None:
    assert tuple(f.name for f in dataclasses.fields(UploadFields)) == UPLOAD_FIELDS
    fields = UploadFields()
    for name in UPLOAD_FIELDS:
        fields.apply(name, _VALUES[name])
    assert fields == UploadFields(
        filename="a.txt",
        description="d",
        tags=["x"],
        metadata={"k": "v"},
        retention_policy="temporary",
        ttl_days=7,
        file_id=_VALUES["file_id"],
    )


def test_the_ingester_forwards_the_contract_fields_by_their_names() -> None:
    fields = IngestFields()
    for name in UPLOAD_FIELDS:
        fields.apply(name, _VALUES[name])
    sent = fields.params("00000000-0000-0000-0000-000000000001")
    assert {name for name, _ in sent} == set(UPLOAD_FIELDS)
    assert dict(sent) == {**_VALUES, "file_id": "00000000-0000-0000-0000-000000000001"}
