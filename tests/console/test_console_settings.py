"""The console's settings (in-process): where the browser finds the ingester and the
query module, and the static file list the router serves."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from artstore.admin.console.router import ASSETS, csp
from artstore.admin.console.settings import UP_INGESTER_URL, UP_QUERY_URL, ConsoleSettings


def test_defaults_are_artstore_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARTSTORE_URL", raising=False)
    s = ConsoleSettings()
    assert (s.ingester_public_url, s.query_public_url) == (UP_INGESTER_URL, UP_QUERY_URL)


def test_behind_the_gateway_one_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTSTORE_URL", "https://store.example.org/")
    s = ConsoleSettings(query_public_url="https://q.example.org/")
    assert s.ingester_public_url == "https://store.example.org"
    assert s.query_public_url == "https://q.example.org"


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "127.0.0.1:8020", "ftp://x"])
def test_only_http_urls(bad: str) -> None:
    with pytest.raises(ValidationError):
        ConsoleSettings(ingester_public_url=bad)


def test_the_admin_settings_carry_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from artstore.admin.settings import AMSettings

    monkeypatch.setenv("AM_INGESTER_PUBLIC_URL", "http://10.0.0.5:8020")
    s = AMSettings(database_url="postgresql://x@127.0.0.1/db")
    assert s.ingester_public_url == "http://10.0.0.5:8020"


def test_static_files_and_policy() -> None:
    assert "vendor/tus-js-client/tus.min.js" in ASSETS
    assert "vendor/tus-js-client/LICENSE" not in ASSETS  # no suffix listed: not served
    assert "index.html" not in ASSETS  # served as the page, with its headers
    policy = csp("http://127.0.0.1:8020/", "https://q.example.org")
    assert "connect-src 'self' http://127.0.0.1:8020 https://q.example.org" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
