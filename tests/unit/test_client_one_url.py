"""One address for every service (issue 18): ARTSTORE_URL / --url, the gateway's; the
per-service URLs still win where given."""

from __future__ import annotations

import pytest

from artstore.cli import runtime
from artstore.client.config import ClientConfig
from artstore.client.credentials import Credentials

GW = "http://gateway.example:8080"


def test_artstore_url_sets_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ARTSTORE_ADMIN_URL", "ARTSTORE_INGESTER_URL", "ARTSTORE_QUERY_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARTSTORE_URL", GW + "/")
    c = ClientConfig.from_env()
    assert (c.admin_url, c.ingester_url, c.query_url) == (GW, GW, GW)


def test_a_service_url_wins_over_the_one_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTSTORE_URL", GW)
    monkeypatch.setenv("ARTSTORE_QUERY_URL", "http://q.example:8030")
    monkeypatch.delenv("ARTSTORE_ADMIN_URL", raising=False)
    monkeypatch.delenv("ARTSTORE_INGESTER_URL", raising=False)
    c = ClientConfig.from_env()
    assert c.query_url == "http://q.example:8030" and c.admin_url == c.ingester_url == GW


def test_at_is_every_service_at_one_address() -> None:
    c = ClientConfig.at(GW, timeout=5.0)
    assert {c.base_url(s) for s in ("admin", "ingester", "query")} == {GW}
    assert c.timeout == 5.0


def test_cli_url_beats_the_saved_login_and_yields_to_a_service_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "settings", runtime.Settings(url=GW, ingester_url="http://ig:1"))
    saved = Credentials(admin_url="http://old-admin:8000")
    c = runtime.make_config(saved)
    assert (c.admin_url, c.ingester_url, c.query_url) == (GW, "http://ig:1", GW)
