"""deploy/terraform/aws checked offline (issue 18): `terraform init` from the local provider
mirror, `fmt -check`, `validate`, and checkov's static checks over the module. No plan or
apply: there is no cloud account here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "deploy" / "terraform" / "aws"
MIRROR = Path(os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
# checkov lives in a venv of its own: its pins (boto3, pytest, packaging) would pull the
# project's below their locked versions, so it is no dev dependency. Made on first use.
CHECKOV_VERSION = "3.3.30"
TOOLS = ROOT / ".artstore" / "tools" / f"checkov-{CHECKOV_VERSION}"


def _checkov() -> Path:
    exe = TOOLS / "bin" / "checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True, timeout=120)
        subprocess.run(
            [str(TOOLS / "bin" / "pip"), "install", "-q", f"checkov=={CHECKOV_VERSION}"],
            check=True,
            timeout=900,
            capture_output=True,
        )
    return exe


def _cli_config(tmp: Path) -> Path:
    """TF_CLI_CONFIG_FILE when it exists, else one pointing `init` at the local mirror."""
    given = os.environ.get("TF_CLI_CONFIG_FILE")
    if given and Path(given).is_file():
        return Path(given)
    rc = tmp / "terraformrc"
    rc.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path = "{MIRROR}"\n'
        '    include = ["registry.terraform.io/hashicorp/*"]\n  }\n'
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n'
    )
    return rc


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of the module, initialised (the repository gets no .terraform directory)."""
    tmp = tmp_path_factory.mktemp("tf")
    work = tmp / "aws"
    shutil.copytree(MODULE, work, ignore=shutil.ignore_patterns(".terraform*"))
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(_cli_config(tmp)), "TF_IN_AUTOMATION": "1"}
    env["CHECKPOINT_DISABLE"] = "1"
    done = _tf(work, env, "init", "-backend=false", "-input=false", "-no-color")
    assert done.returncode == 0, done.stdout + done.stderr
    return work, env


def _tf(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_terraform_is_formatted() -> None:
    done = subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "-no-color", str(MODULE)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHECKPOINT_DISABLE": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_terraform_validates(module: tuple[Path, dict[str, str]]) -> None:
    work, env = module
    done = _tf(work, env, "validate", "-no-color")
    assert done.returncode == 0, done.stdout + done.stderr


def test_checkov_passes(module: tuple[Path, dict[str, str]]) -> None:
    work, _ = module
    done = subprocess.run(
        [
            str(_checkov()),
            "--directory",
            str(work),
            "--framework",
            "terraform",
            "--quiet",
            "--compact",
            "--skip-download",
            "--config-file",
            str(MODULE / ".checkov.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
