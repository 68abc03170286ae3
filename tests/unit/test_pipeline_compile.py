"""The checked-in IR YAML is exactly what the code compiles, and it carries the cluster settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components import BASE_IMAGE  # noqa: E402
from pipelines.training import COMPILED, compile_pipeline  # noqa: E402


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, dict]:
    text = compile_pipeline(tmp_path_factory.mktemp("ir") / "training.yaml").read_text()
    spec, platform = list(yaml.safe_load_all(text))
    return text, spec, platform


def test_checked_in_ir_matches_the_code(compiled) -> None:
    text, _, _ = compiled
    assert COMPILED.exists(), "pipelines/training.yaml is missing: run `voicecart pipeline compile`"
    assert COMPILED.read_text() == text, (
        "pipelines/training.yaml drifted from pipelines/training.py: run `voicecart pipeline compile` and commit it")


def test_every_step_runs_in_the_pinned_project_image(compiled) -> None:
    _, spec, _ = compiled
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == 10
    assert {e["container"]["image"] for e in executors.values()} == {BASE_IMAGE}
    assert BASE_IMAGE.endswith(":0.1.0")


def test_training_steps_are_placed_on_gpu_nodes(compiled) -> None:
    _, spec, platform = compiled
    executors = spec["deploymentSpec"]["executors"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for step in ("exec-train-ranker", "exec-pretrain-cstar"):
        resources = executors[step]["container"]["resources"]
        assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
        assert resources["accelerator"]["resourceCount"] == "1"
        assert k8s[step]["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
        assert k8s[step]["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]


def test_bigquery_secret_is_mounted_where_data_is_read(compiled) -> None:
    _, spec, platform = compiled
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for step in ("exec-prepare-data", "exec-build-snapshot"):
        assert k8s[step]["secretAsVolume"][0]["secretName"] == "voicecart-bigquery"
        env = {e["name"]: e["value"] for e in spec["deploymentSpec"]["executors"][step]["container"]["env"]}
        assert env["GOOGLE_APPLICATION_CREDENTIALS"] == "/var/secrets/google/credentials.json"
        assert k8s[step]["secretAsEnv"][0]["keyToEnv"] == [{"envVar": "VOICECART_FEATURES__OFFLINE__PROJECT",
                                                             "secretKey": "project"}]
        config = k8s[step]["configMapAsEnv"][0]
        assert config["configMapName"] == "voicecart-feature-store" and config["optional"] is True
        assert {e["envVar"] for e in config["keyToEnv"]} == {"VOICECART_FEATURES__OFFLINE__TYPE",
                                                             "VOICECART_FEATURES__OFFLINE__DATASET"}


def _all_tasks(spec: dict) -> dict[str, dict]:
    tasks = dict(spec["root"]["dag"]["tasks"])
    for comp in spec["components"].values():
        tasks.update(comp.get("dag", {}).get("tasks", {}))
    return tasks


def test_gate_branches_retries_caching_and_exit_handler(compiled) -> None:
    _, spec, _ = compiled
    tasks = _all_tasks(spec)
    conditions = [t["triggerPolicy"].get("condition", "") for t in tasks.values() if "triggerPolicy" in t]
    assert any("evaluate-challenger-verdict'] == 'promote'" in c for c in conditions)
    assert tasks["prepare-data"]["retryPolicy"]["maxRetryCount"] == 1
    assert tasks["register-model"]["retryPolicy"]["maxRetryCount"] == 2
    assert tasks["prepare-data"]["cachingOptions"] == {"enableCache": True}
    for step in ("evaluate-challenger", "register-model", "deploy-canary", "keep-champion"):
        assert tasks[step]["cachingOptions"] == {}, f"{step} depends on registry state and must not be cached"
    assert tasks["record-run"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"


def test_pipeline_parameters_cover_window_source_hyperparameters_and_margin(compiled) -> None:
    _, spec, _ = compiled
    params = spec["root"]["inputDefinitions"]["parameters"]
    for name in ("window_start", "test_from", "window_end", "source", "source_path", "epochs", "hidden", "lr",
                 "promotion_margin", "registry_uri"):
        assert name in params
    assert "defaultValue" not in params["registry_uri"]


def test_typed_artifacts_for_lineage(compiled) -> None:
    _, spec, _ = compiled
    outputs = {name: {k: v["artifactType"]["schemaTitle"] for k, v in comp.get("outputDefinitions", {})
                      .get("artifacts", {}).items()} for name, comp in spec["components"].items()}
    assert outputs["comp-prepare-data"] == {"dataset": "system.Dataset"}
    assert outputs["comp-train-ranker"] == {"model": "system.Model", "metrics": "system.Metrics"}
    assert outputs["comp-evaluate-challenger"]["report"] == "system.Markdown"
    assert outputs["comp-pretrain-cstar"]["loss_curves"] == "system.HTML"
    assert outputs["comp-build-snapshot"] == {"snapshot": "system.Dataset"}


def test_every_edge_carries_data_its_consumer_reads(compiled) -> None:
    """No `.after()`-only edges: each step reads an artifact of the step it follows."""
    _, spec, _ = compiled
    tasks = _all_tasks(spec)
    reads = {name: {a["taskOutputArtifact"]["producerTask"]
                    for a in t.get("inputs", {}).get("artifacts", {}).values() if "taskOutputArtifact" in a}
             for name, t in tasks.items()}
    assert reads["pretrain-cstar"] == {"prepare-data"}
    assert reads["build-snapshot"] == {"prepare-data", "pretrain-cstar"}
    assert reads["train-ranker"] == {"build-snapshot"}
    assert reads["export-bundle"] == {"train-ranker", "build-snapshot"}
    assert reads["evaluate-challenger"] == {"export-bundle", "build-snapshot", "train-ranker"}
    for name, t in tasks.items():
        assert set(t.get("dependentTasks", [])) <= reads.get(name, set()) | {"evaluate-challenger", "register-model",
                                                                             "exit-handler-1"}, name
