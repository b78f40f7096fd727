"""Swagger UI's multipart form (issue 17): it sends every field, in the schema's order,
the ones left empty included. The schema lists the fields before ``file`` (the streaming
parser takes fields only before the file part), and an empty tags, metadata, ttl_days or
retention_policy is not given."""

from __future__ import annotations

import pytest

from artstore.common.errors import ValidationFailed
from artstore.ingester.uploads.fields import IngestFields
from artstore.ingester.uploads.router import _BATCH_DOC, _MULTIPART_DOC


@pytest.mark.parametrize("doc", [_MULTIPART_DOC, _BATCH_DOC], ids=["single", "batch"])
def test_the_form_schema_lists_the_file_last(doc: dict[str, object]) -> None:
    schema = doc["requestBody"]["content"]["multipart/form-data"]["schema"]  # type: ignore[index]
    names = list(schema["properties"])
    assert names[-1] == "file"
    assert set(names[:-1]) == {"description", "tags", "metadata", "retention_policy", "ttl_days"}


def test_a_form_with_the_fields_left_empty_is_a_valid_permanent_upload() -> None:
    fields = IngestFields()
    for name, value in [
        ("description", ""),
        ("tags", ""),
        ("metadata", ""),
        ("retention_policy", "permanent"),
        ("ttl_days", ""),
    ]:
        fields.apply(name, value)
    fields.check()
    assert fields.retention_policy == "permanent"
    assert fields.ttl_days is None
    assert fields.passed == [("description", "")]


@pytest.mark.parametrize(("name", "value"), [("tags", " "), ("metadata", "x"), ("ttl_days", "0")])
def test_a_value_given_is_still_checked(name: str, value: str) -> None:
    with pytest.raises(ValidationFailed):
        IngestFields().apply(name, value)
