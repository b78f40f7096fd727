"""What an ``artstore`` installation really offers, as JSON on stdout, for the checks of the
rendered Kubernetes manifests (tests/deploy/test_k8s_render.py). Runs with the repo venv's
python or, when the image is built, inside it (``docker run --entrypoint python``):

    python image_facts.py cli          the command tree (options, env vars), the services
                                       and the settings each reads
    python image_facts.py apps         for each {"name": {env}} of the JSON on stdin: that
                                       service's app built from that environment, as
                                       `artstore serve NAME` builds it: host, port, routes

Only the standard library and ``artstore`` are imported, so the file runs anywhere.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _walk(cmd: Any, path: list[str], out: list[dict[str, Any]]) -> None:
    options: list[str] = []
    envvars: list[str] = []
    for p in cmd.params:
        options += [o for o in (*p.opts, *p.secondary_opts) if o.startswith("-")]
        env = getattr(p, "envvar", None)
        envvars += [env] if isinstance(env, str) else list(env or [])
    out.append({"path": path, "options": sorted(options), "envvars": sorted(envvars)})
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        _walk(sub, [*path, name], out)


def cli() -> dict[str, Any]:
    import typer

    from artstore.cli.main import app
    from artstore.cli.settings_doc import env_names, service_settings
    from artstore.client.config import ENV_TOKEN

    commands: list[dict[str, Any]] = []
    _walk(typer.main.get_command(app), [], commands)
    settings = {name: sorted(env_names(cls)) for name, cls in service_settings().items()}
    # Read by the CLI itself, not through an option.
    extra = ["ARTSTORE_CONFIG_DIR", ENV_TOKEN]
    return {"commands": commands, "settings": settings, "cli_env": sorted(extra)}


def app(name: str) -> dict[str, Any]:
    from fastapi import routing as fastapi_routing

    from artstore.cli.services import load

    asgi, host, port = load(name).make_app(None)
    routes = []
    # FastAPI >= 0.165 keeps included routers whole: its iterator yields their routes.
    flat = getattr(fastapi_routing, "iter_route_contexts", lambda routes: routes)
    for r in flat(asgi.routes):
        path = getattr(r, "path", None)
        if path is not None:
            routes.append([path, sorted(getattr(r, "methods", None) or [])])
    return {"host": host, "port": port, "routes": sorted(routes)}


def apps(wanted: dict[str, dict[str, str]]) -> dict[str, Any]:
    import os

    base = dict(os.environ)
    out = {}
    for key, env in wanted.items():
        os.environ.clear()
        os.environ.update({**base, **env})
        out[key] = app(key.split("@")[0])
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["cli"]:
        facts = cli()
    elif argv[:1] == ["apps"]:
        facts = apps(json.load(sys.stdin))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(facts, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
