"""API shapes of users (architecture §6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from artstore.admin.passwords import MIN_PASSWORD_LENGTH
from artstore.admin.roles import ROLES
from artstore.admin.users.repository import UserRow, now_locked
from artstore.common.bounds import PlainText, refuse_nulls

USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


def _known_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown roles {unknown}; known: {list(ROLES)}")
    return sorted(set(roles), key=ROLES.index)


class User(BaseModel):
    id: str
    username: str
    email: str | None
    full_name: str | None
    roles: list[str]
    status: Literal["active", "disabled", "locked"]
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    locked_until: datetime | None = None

    @classmethod
    def of(cls, row: UserRow) -> User:
        locked = now_locked(row, datetime.now(UTC))
        status = "locked" if row.status == "active" and locked else row.status
        return cls(
            id=row.id,
            username=row.username,
            email=row.email,
            full_name=row.full_name,
            roles=list(row.roles),
            status=status,
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_login_at=row.last_login_at,
            locked_until=row.locked_until if locked else None,
        )


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME)
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)
    roles: list[str] = Field(default_factory=lambda: ["user"], max_length=16)
    email: PlainText | None = Field(None, max_length=320)
    full_name: PlainText | None = Field(None, max_length=200)

    _roles = field_validator("roles")(_known_roles)


class UserPatch(BaseModel):
    # extra="forbid" makes a PATCH naming `username` (which never changes) a 400.
    model_config = ConfigDict(extra="forbid")

    roles: list[str] | None = Field(None, max_length=16)
    email: PlainText | None = Field(None, max_length=320)
    full_name: PlainText | None = Field(None, max_length=200)
    status: Literal["active", "disabled"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: object) -> object:
        # email and full_name may be cleared with null; roles and status cannot.
        return refuse_nulls(data, ("roles", "status"))

    @field_validator("roles")
    @classmethod
    def _roles(cls, roles: list[str] | None) -> list[str] | None:
        return None if roles is None else _known_roles(roles)


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)


class PasswordChange(NewPassword):
    current_password: str = Field(max_length=1024)
