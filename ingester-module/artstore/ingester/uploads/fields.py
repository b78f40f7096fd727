"""Upload fields as the client sends them (form fields or query string). The ingester
checks them all before anything is placed or forwarded: its own (retention, ttl) and,
with the same one text policy the SE applies (artstore.common.text), the text fields it
passes on, so an invalid one is a 400 naming it and no SE sees the request."""

from __future__ import annotations

from dataclasses import dataclass, field

from artstore.common.errors import ValidationFailed
from artstore.common.text import check_description, check_filename, parse_metadata, parse_tags

# Passed through to the SE as they are (checked here first; the SE checks them again).
PASSED = ("description", "tags", "metadata")
# A form sends the fields left empty (Swagger UI's does, router.py): these are then not
# given, as an empty value of them means nothing else (an empty description is kept).
_EMPTY_IS_ABSENT = ("tags", "metadata", "ttl_days", "retention_policy")


@dataclass
class IngestFields:
    filename: str | None = None
    retention_policy: str = "temporary"  # architecture §7: temporary unless asked otherwise
    ttl_days: int | None = None
    passed: list[tuple[str, str]] = field(default_factory=list)

    def apply(self, name: str, value: str) -> None:
        """One form/query field. ``file_id`` is the ingester's to choose and is ignored,
        like any unknown name."""
        if value == "" and name in _EMPTY_IS_ABSENT:
            return
        if name == "filename":
            self.filename = check_filename(name, value)
        elif name == "retention_policy":
            if value not in ("temporary", "permanent"):
                raise ValidationFailed(
                    "retention_policy must be temporary or permanent",
                    details={"field": "retention_policy"},
                )
            self.retention_policy = value
        elif name == "ttl_days":
            try:
                ttl = int(value)
            except ValueError:
                raise ValidationFailed(
                    "ttl_days must be an integer", details={"field": "ttl_days"}
                ) from None
            if not 1 <= ttl <= 3650:
                raise ValidationFailed("ttl_days must be 1..3650", details={"field": "ttl_days"})
            self.ttl_days = ttl
        elif name in PASSED:
            if name == "description":
                check_description(value)
            elif name == "tags":
                parse_tags(value)
            else:
                parse_metadata(value)
            self.passed.append((name, value))

    def check(self) -> None:
        if self.retention_policy == "permanent" and self.ttl_days is not None:
            raise ValidationFailed(
                "ttl_days applies to temporary files only", details={"field": "ttl_days"}
            )

    def copy(self) -> IngestFields:
        return IngestFields(self.filename, self.retention_policy, self.ttl_days, [*self.passed])

    def params(self, file_id: str) -> list[tuple[str, str]]:
        """The query string of the SE upload: every copy is stored under ``file_id``."""
        out = [("file_id", file_id), ("retention_policy", self.retention_policy)]
        if self.filename:
            out.append(("filename", self.filename))
        if self.ttl_days is not None:
            out.append(("ttl_days", str(self.ttl_days)))
        return out + self.passed
