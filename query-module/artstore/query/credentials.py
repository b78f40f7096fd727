"""The query module's own service account: QM_CLIENT_ID/SECRET, or the admin's
bootstrap credentials file (its ``query`` entry) for local runs."""

from __future__ import annotations

import json
import logging

from artstore.query.settings import QMSettings

log = logging.getLogger("artstore.query")


def service_credentials(settings: QMSettings) -> tuple[str, str]:
    """Blocking file read: call it from a thread."""
    if settings.client_id:
        return settings.client_id, settings.client_secret
    path = settings.credentials_file
    if str(path) in ("", "."):
        log.warning("no service account configured: links and the SE registry will fail")
        return "", ""
    try:
        entry = json.loads(path.read_text()).get("query") or {}
        return str(entry["client_id"]), str(entry["client_secret"])
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        log.warning("cannot read the query credentials from %s: %s", path, exc)
        return "", ""
