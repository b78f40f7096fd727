"""The login kept between CLI runs: ``credentials.json`` in the user's config dir.

The directory is ``$ARTSTORE_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/artstore``, else
``~/.config/artstore`` (``%APPDATA%\\artstore`` on Windows) -- never the working
directory, so a token cannot end up committed with a repository. The file is written
atomically with mode 0600 in a 0700 directory.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

ENV_CONFIG_DIR = "ARTSTORE_CONFIG_DIR"
FILE_NAME = "credentials.json"


def config_dir() -> Path:
    explicit = os.environ.get(ENV_CONFIG_DIR)
    if explicit:
        return Path(explicit).expanduser()
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "artstore"
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "artstore"


class Credentials(BaseModel):
    """A user session (``refresh_token``) or a service account (``client_id``/secret)."""

    model_config = ConfigDict(extra="ignore")

    admin_url: str | None = None
    ingester_url: str | None = None
    query_url: str | None = None
    kind: str = "user"
    subject: str = ""
    access_token: str | None = None
    refresh_token: str | None = None
    client_id: str | None = None
    # Kept so a service-account login can renew its token like a user session does;
    # the file is 0600 in the user's own config dir (as ~/.aws/credentials is).
    client_secret: str | None = None


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace ``path`` with ``data`` as JSON, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates the file 0600, so the secret is never readable by others, even
    # for the moment before the rename.
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CredentialStore:
    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or config_dir()) / FILE_NAME

    def load(self) -> Credentials | None:
        try:
            return Credentials.model_validate_json(self.path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # a damaged file is the same as no login; `login` rewrites it

    def save(self, creds: Credentials) -> None:
        write_private(self.path, creds.model_dump())

    def clear(self) -> bool:
        try:
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False
