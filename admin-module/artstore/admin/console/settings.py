"""The console's knobs, mixed into the admin's settings (``AM_`` prefix): where the
browser reaches the ingester and the query module."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field, model_validator

# What `artstore up` starts (lib/artstore/cli/up.py); behind the gateway every service
# shares one origin, ARTSTORE_URL, which then is the default of both.
UP_INGESTER_URL = "http://127.0.0.1:8020"
UP_QUERY_URL = "http://127.0.0.1:8030"


class ConsoleSettings(BaseModel):
    ingester_public_url: str = Field(
        "",
        description="The ingester's URL as the console's browser reaches it; default "
        "`ARTSTORE_URL` (the gateway) when set, else `http://127.0.0.1:8020`",
    )
    query_public_url: str = Field(
        "",
        description="The query module's URL as the console's browser reaches it; default "
        "`ARTSTORE_URL` (the gateway) when set, else `http://127.0.0.1:8030`",
    )

    @model_validator(mode="after")
    def _console_defaults(self) -> ConsoleSettings:
        gateway = os.environ.get("ARTSTORE_URL", "").strip().rstrip("/")
        for name, default in (
            ("ingester_public_url", UP_INGESTER_URL),
            ("query_public_url", UP_QUERY_URL),
        ):
            value = str(getattr(self, name)).strip().rstrip("/")
            if value and not value.startswith(("http://", "https://")):
                raise ValueError(f"AM_{name.upper()} must be an http(s) URL, not {value!r}")
            setattr(self, name, value or gateway or default)
        return self
