"""What the images run: the engine entrypoint's translation of KServe's transformer arguments
(parsed by the real `voicecart serve` command), and the pipeline submitter's parameter checks
against the real compiled pipeline."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "docker" / "engine-entrypoint.sh"
_PRINTER_DIR = tempfile.TemporaryDirectory(prefix="voicecart-entrypoint-")  # removed at exit
PIPELINE = REPO / "pipelines" / "training.yaml"


def translate(*args: str, env: dict[str, str] | None = None) -> tuple[list[str], str | None]:
    """Run the entrypoint with `voicecart` replaced by a printer of its argv and model-name env."""
    printer = "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ.get('VOICECART_SERVING__MODEL_NAME')]))"
    proc = subprocess.run(["bash", str(ENTRYPOINT), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {}), "VOICECART_BIN": str(_printer(printer))})
    assert proc.returncode == 0, proc.stderr
    argv, model = json.loads(proc.stdout)
    return argv, model


def _printer(code: str) -> Path:
    path = Path(_PRINTER_DIR.name) / "voicecart"
    path.write_text(f"#!{sys.executable}\n{code}\n")
    path.chmod(0o755)
    return path


def serve_accepts(argv: list[str]) -> dict:
    """Parse argv with the real `voicecart serve` command, without running it."""
    import typer

    from voicecart.cli import app

    group = typer.main.get_command(app)
    assert argv[0] == "serve"
    return group.commands["serve"].make_context("serve", list(argv[1:])).params


def test_kserve_transformer_arguments_become_serve_flags() -> None:
    # what the chart passes, then what KServe appends (transformer_custom.go)
    argv, model = translate("serve", "--model-dir=/mnt/models", "--port=8080",
                            "--triton-url=voicecart-predictor.shop:80", "--triton-model=voicecart",
                            "--model_name", "voicecart", "--predictor_host", "voicecart-predictor.shop",
                            "--http_port", "8080")
    assert model == "voicecart"
    assert "--model_name" not in argv and "--predictor_host" not in argv and "--http_port" not in argv
    params = serve_accepts(argv)
    assert params["triton_url"] == "voicecart-predictor.shop:80" and params["port"] == 8080
    assert str(params["model_dir"]) == "/mnt/models"


def test_predictor_host_fills_the_triton_url_when_none_was_given() -> None:
    argv, _ = translate("serve", "--model-dir=/mnt/models", "--predictor_host=vc-predictor.ns", "--http_port=9000")
    params = serve_accepts(argv)
    assert params["triton_url"] == "vc-predictor.ns:80" and params["port"] == 9000


def test_an_explicit_model_name_setting_wins_over_kserve() -> None:
    _, model = translate("serve", "--model-dir=/m", "--model_name", "isvc-name", env={"VOICECART_SERVING__MODEL_NAME": "voicecart"})
    assert model == "voicecart"


def test_cpu_predictor_arguments_pass_through_untouched() -> None:
    argv, model = translate("serve", "--model-dir=/mnt/models", "--port=8080")
    assert argv == ["serve", "--model-dir=/mnt/models", "--port=8080"] and model is None
    serve_accepts(argv)


def test_a_kserve_flag_without_value_is_refused() -> None:
    proc = subprocess.run(["bash", str(ENTRYPOINT), "serve", "--predictor_host"], capture_output=True, text=True,
                          env={**os.environ, "VOICECART_BIN": "true"})
    assert proc.returncode == 2 and "--predictor_host needs a value" in proc.stderr


# -- the pipeline submitter -----------------------------------------------------------------------

def submitter():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("kfp_submit", REPO / "docker" / "kfp_submit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


needs_pipeline = pytest.mark.skipif(not PIPELINE.is_file(), reason="pipelines/training.yaml not compiled yet")


@needs_pipeline
@pytest.mark.parametrize("values", ["values.yaml", "values-production.yaml"])
def test_the_charts_pipeline_parameters_fit_the_compiled_pipeline(values: str) -> None:
    kfp_submit = submitter()
    params = yaml.safe_load((REPO / "helm/voicecart" / values).read_text())["pipeline"]["recurringRun"]["parameters"]
    checked = kfp_submit.check_params(kfp_submit.load_ir(PIPELINE), [f"{k}={v}" for k, v in params.items()])
    assert checked["registry_uri"].startswith("gs://")


@needs_pipeline
def test_dry_run_prints_typed_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    rc = submitter().main(["--host", "http://kfp", "--package", str(PIPELINE), "--dry-run",
                           "--param", "registry_uri=gs://m/registry", "--param", "epochs=3",
                           "--param", "promotion_margin=0.01", "--param", "use_embeddings=true"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arguments"] == {"registry_uri": "gs://m/registry", "epochs": 3, "promotion_margin": 0.01,
                                "use_embeddings": True}


@needs_pipeline
@pytest.mark.parametrize("params, message", [
    (["registry_uri=gs://m", "epoch=3"], "--param epoch: the pipeline has no such parameter"),
    (["registry_uri=gs://m", "epochs=three"], "--param epochs='three': expected NUMBER_INTEGER"),
    (["registry_uri=gs://m", "use_embeddings=perhaps"], "expected BOOLEAN"),
    (["epochs=3"], "missing required pipeline parameter(s): registry_uri"),
    (["registry_uri"], "expected name=value"),
])
def test_bad_parameters_are_refused_naming_them(params: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--host", "http://kfp", "--package", str(PIPELINE), "--dry-run"]
    for p in params:
        args += ["--param", p]
    assert submitter().main(args) == 2
    assert message in capsys.readouterr().err


def test_a_file_that_is_not_a_pipeline_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\n")
    assert submitter().main(["--host", "h", "--package", str(bad), "--dry-run"]) == 2
    assert "is not a compiled KFP pipeline" in capsys.readouterr().err
    assert submitter().main(["--host", "h", "--package", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
