"""Debian's ``chromium`` for the browser tests, driven by Playwright (no browser download:
the machines reach package registries only). Installed with apt-get when missing, as
the test setup's first step; a machine where that fails fails the tests, never skips."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from playwright.sync_api import Browser, sync_playwright

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

# The outside network is blocked in the browser itself: every request that is not for
# loopback goes to a proxy address where nothing listens (loopback bypasses proxies),
# and no name but localhost resolves. Nothing here answers for the pages
# (no page.route(): it would answer CORS preflights itself and hide what they refuse).
_OFFLINE_ARGS = [
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1;localhost",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def chromium_executable() -> str:
    """The path of ``chromium``, installing the Debian package first when it is missing."""
    found = shutil.which("chromium")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Waits for the dpkg lock rather than failing when another install holds it.
    wait = ["-o", "DPkg::Lock::Timeout=600"]
    for step in (["apt-get", *wait, "update"], ["apt-get", *wait, "install", "-y", "chromium"]):
        done = subprocess.run(
            [*sudo, *step], env=env, capture_output=True, text=True, timeout=900, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed:\n{done.stdout[-2000:]}{done.stderr}")
    found = shutil.which("chromium")
    if not found:
        raise RuntimeError("apt-get installed chromium but it is not on PATH")
    return found


@contextmanager
def offline_chromium() -> Iterator[Browser]:
    """A headless Chromium that reaches loopback only."""
    executable = chromium_executable()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            # Chromium refuses to run as root inside its sandbox.
            args=[*_OFFLINE_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])],
        )
        try:
            yield browser
        finally:
            browser.close()


def off_loopback(urls: list[str]) -> list[str]:
    """The URLs of ``urls`` whose host is not loopback (``data:`` and the like have none)."""
    return [u for u in urls if urlsplit(u).hostname and urlsplit(u).hostname not in LOOPBACK]
