"""Deployment files checked without a Docker engine or a cluster: hadolint on the
Dockerfile, the compose file against the compose schema, the Kubernetes manifests
validated against the Kubernetes schemas, and every probe, port and setting they use
matched against what the services really serve and read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from artstore.common.settings_doc import env_names, service_settings

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
    done = _run(str(BIN / "hadolint"), str(ROOT / "Dockerfile"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_file_matches_the_compose_schema() -> None:
    done = _run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                str(ROOT / "docker-compose.yml"))
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
    assert checked == 7  # migrate, admin, three SEs, ingester, query


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
    files = sorted(str(p) for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"
                   and p.name != "dev-settings.yaml")  # a strategic-merge patch, not whole
    done = _run(str(BIN / "kubernetes-validate"), "--strict", *files)
    assert done.returncode == 0, done.stdout + done.stderr


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def test_probes_ports_and_settings_are_real() -> None:
    checked = set()
    for path, doc in _manifests():
        for c in _containers(doc):
            if c.get("image") != "artstore":
                continue
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
    assert checked == {"admin", "storage-element", "ingester", "query"}


def test_config_maps_and_secrets_hold_only_real_settings() -> None:
    known = set().union(*(_known(s)[0] for s in ("admin", "storage-element", "ingester",
                                                 "query")))
    for path, doc in _manifests():
        if doc["kind"] in ("ConfigMap", "Secret") and doc["metadata"]["name"].startswith(
            "artstore"
        ):
            keys = set(doc.get("data", {})) | set(doc.get("stringData", {}))
            assert not keys - known, f"{path}: {sorted(keys - known)}"
