"""API shapes of service accounts (architecture §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from artstore.admin.roles import ordered
from artstore.admin.service_accounts.repository import ServiceAccountRow
from artstore.common.auth import ALL_SCOPES
from artstore.common.bounds import MultilineText, refuse_nulls

NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$"


def _known_scopes(scopes: list[str] | None) -> list[str] | None:
    if scopes is None:
        return None
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; known: {list(ALL_SCOPES)}")
    return ordered(scopes)


class ServiceAccount(BaseModel):
    id: str
    client_id: str
    name: str
    description: str
    scopes: list[str]
    status: Literal["active", "suspended"]
    secret_expires_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ServiceAccountRow) -> ServiceAccount:
        return cls(
            id=row.id,
            client_id=row.client_id,
            name=row.name,
            description=row.description,
            scopes=list(row.scopes),
            status=row.status,
            secret_expires_at=row.secret_expires_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ServiceAccountCreated(ServiceAccount):
    client_secret: str


class ServiceAccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    scopes: list[str] = Field(max_length=64)
    description: MultilineText = Field("", max_length=2000)

    _scopes = field_validator("scopes")(_known_scopes)


class ServiceAccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=NAME)
    description: MultilineText | None = Field(None, max_length=2000)
    scopes: list[str] | None = Field(None, max_length=64)
    status: Literal["active", "suspended"] | None = None

    _scopes = field_validator("scopes")(_known_scopes)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: object) -> object:
        return refuse_nulls(data, ("name", "description", "scopes", "status"))


class RotatedSecret(BaseModel):
    client_id: str
    client_secret: str
    secret_expires_at: datetime
