"""Deployment files checked without a Docker engine or a cluster: hadolint on the
Dockerfile, the compose file against the compose schema, the Kubernetes manifests
validated against the Kubernetes schemas, and every probe, port and setting they use
matched against what the services really serve and read."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from artstore.cli.settings_doc import env_names, service_settings
from artstore.common.settings import secret_problem

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
K8S = ROOT / "deploy" / "k8s"
HEALTH_PATHS = {"/health/live", "/health/ready"}
IMAGE_ONLY = {"PORT"}  # read by the image's HEALTHCHECK, not by a service


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _service_of(args: list[str]) -> str | None:
    """`serve <service>` -> the service name, `migrate` -> "migrate"."""
    if args[:1] == ["serve"] and len(args) > 1:
        return args[1]
    return args[0] if args else None


def _known(service: str) -> tuple[set[str], type[BaseSettings] | None]:
    classes = service_settings()
    shared = env_names(classes["shared"])
    cls = classes.get(service)
    return (shared | (env_names(cls) if cls else set()) | IMAGE_ONLY), cls


def _port_setting(cls: type[BaseSettings]) -> str:
    return next(n for n in env_names(cls) if n.endswith("_PORT"))


def test_dockerfile_passes_hadolint() -> None:
    for dockerfile in (ROOT / "Dockerfile", ROOT / "deploy" / "gateway" / "Dockerfile"):
        done = _run(str(BIN / "hadolint"), str(dockerfile))
        assert done.returncode == 0, done.stdout + done.stderr


def test_compose_file_matches_the_compose_schema() -> None:
    done = _run(
        str(BIN / "check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(ROOT / "docker-compose.yml"),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_services_use_real_settings_and_ports() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    checked = 0
    for name, svc in compose["services"].items():
        if svc.get("image") != "artstore:local" or "entrypoint" in svc:
            continue  # third-party images; the one-shot `register` script runs the CLI
        service = _service_of(svc.get("command", ["serve", "storage-element"]))
        assert service is not None
        known, cls = _known(service)
        env = svc.get("environment", {})
        unknown = set(env) - known
        assert not unknown, f"{name}: settings no service reads: {sorted(unknown)}"
        if cls is not None:
            port = env.get(_port_setting(cls))
            assert port is not None and env.get("PORT") == port, name
        checked += 1
    assert checked == 8  # migrate, admin, three SEs, ingester, query, worker


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                docs.append((path, doc))
    return docs


def test_kustomizations_name_files_that_exist() -> None:
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for entry in spec.get("resources", []):
            assert (kustomization.parent / entry).exists(), (kustomization, entry)
        for patch in spec.get("patches", []):
            if "path" in patch:
                assert (kustomization.parent / patch["path"]).exists(), (kustomization, patch)


def test_manifests_match_the_kubernetes_schemas() -> None:
    files = sorted(
        str(p)
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and p.name != "dev-settings.yaml"
    )  # a strategic-merge patch, not whole
    done = _run(str(BIN / "kubernetes-validate"), "--strict", *files)
    assert done.returncode == 0, done.stdout + done.stderr


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def test_probes_ports_and_settings_are_real() -> None:
    checked = set()
    for path, doc in _manifests():
        for c in _containers(doc):
            if c.get("image") != "artstore" or "command" in c:
                continue  # a script (the SEs' `register`): test_k8s_render.py checks it
            service = _service_of(c.get("args", []))
            assert service is not None, path
            known, cls = _known(service)
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            assert not set(env) - known, f"{path}: unknown settings {set(env) - known}"
            if cls is None:  # the migrate init container serves nothing
                continue
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            assert str(ports["http"]) == env[_port_setting(cls)] == env["PORT"], path
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                get = c[probe]["httpGet"]
                assert get["path"] in HEALTH_PATHS, (path, probe)
                assert get["port"] in ports or get["port"] in ports.values(), (path, probe)
            checked.add(service)
    assert checked == {"admin", "storage-element", "ingester", "query", "worker"}


def test_config_maps_and_secrets_hold_only_real_settings() -> None:
    services = ("admin", "storage-element", "ingester", "query", "worker")
    known = set().union(*(_known(s)[0] for s in services))
    for path, doc in _manifests():
        if doc["kind"] in ("ConfigMap", "Secret") and doc["metadata"]["name"].startswith(
            "artstore"
        ):
            keys = set(doc.get("data", {})) | set(doc.get("stringData", {}))
            assert not keys - known, f"{path}: {sorted(keys - known)}"


# -- secrets (issue 13, finding 5) --------------------------------------------------------
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$|KEY_ID$|DATABASE_URL")
# What each workload may read from a Secret: nothing more (docs/security.md).
SECRETS_OF = {
    "migrate": {"DATABASE_URL"},
    "admin": {"DATABASE_URL", "AM_KEY_ENCRYPTION_KEY", "AM_BOOTSTRAP_ADMIN_PASSWORD"},
    "storage-element": {"DATABASE_URL"},
    "query": {"DATABASE_URL", "QM_LINK_SECRET", "QM_CLIENT_ID", "QM_CLIENT_SECRET"},
    "ingester": {"IG_CLIENT_ID", "IG_CLIENT_SECRET"},
    "worker": {"DATABASE_URL", "WK_CLIENT_ID", "WK_CLIENT_SECRET"},
    # The SE pods' `register` container: an admin:write login, in a Secret of its own.
    "register": {"ARTSTORE_USERNAME", "ARTSTORE_PASSWORD"},
}
NEVER_ON_AN_SE = {"AM_KEY_ENCRYPTION_KEY", "QM_LINK_SECRET", "AM_BOOTSTRAP_ADMIN_PASSWORD"}


def _secret_refs(doc: dict[str, Any], c: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(setting names read from Secrets, Secret names) of container ``c``."""
    keys, names = set(), set()
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            keys.add(e["name"])
            names.add(ref["name"])
    for src in c.get("envFrom", []):
        assert "secretRef" not in src, "envFrom a Secret hands over every key it has"
    volumes = doc["spec"]["template"]["spec"].get("volumes", [])
    names |= {v["secret"]["secretName"] for v in volumes if "secret" in v}
    return keys, names


def test_each_workload_gets_only_the_secrets_it_uses() -> None:
    names_of: dict[str, set[str]] = {}
    for path, doc in _manifests():
        for c in _containers(doc):
            if c.get("image") != "artstore":
                continue
            service = "register" if "command" in c else _service_of(c.get("args", []))
            assert service is not None
            keys, names = _secret_refs(doc, c)
            assert keys == SECRETS_OF[service], (path, service, keys)
            names_of.setdefault(service, set()).update(names)
    assert not NEVER_ON_AN_SE & SECRETS_OF["storage-element"]
    # An SE's Secret is its own: none it reads is one the admin or the query reads.
    others = names_of["admin"] | names_of["migrate"] | names_of["query"]
    assert names_of["storage-element"] and not names_of["storage-element"] & others
    # ... and the admin login that registers it is in neither.
    assert names_of["register"] == {"artstore-se-register"}
    assert not names_of["register"] & (others | names_of["storage-element"])


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_no_manifest_holds_a_literal_secret() -> None:
    for path, doc in _manifests():
        if doc["kind"] == "Secret":
            assert not doc.get("data") and not doc.get("stringData"), path
        for c in _containers(doc):
            for e in c.get("env", []):
                if SECRET_NAME.search(e["name"]):
                    assert "value" not in e, (path, e)  # from a Secret, never written here
        for text in _strings(doc):
            assert secret_problem(text, 0) is None or text in NOT_SECRETS, (path, text)


# Names, not credentials: the database, user and issuer "artstore", the dev namespace.
NOT_SECRETS = {"artstore", "artstore-dev"}


def test_compose_has_no_default_secret() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for name, default in re.findall(r"\$\{(\w+):?-([^}]*)\}", text):
        assert not SECRET_NAME.search(name), f"{name} defaults to {default!r}"
    compose = yaml.safe_load(text)
    for name, svc in compose["services"].items():
        env = svc.get("environment", {})
        for key, value in env.items():
            if SECRET_NAME.search(key) and key != "SE_S3_ACCESS_KEY_ID":
                assert re.search(r"\$\{\w+:\?[^}]+\}", str(value)), (name, key, value)
        if _service_of(svc.get("command", [])) == "storage-element":
            assert not NEVER_ON_AN_SE & set(env), name
        for value in _strings(env):
            assert secret_problem(value, 0) is None or value in NOT_SECRETS, (name, value)
