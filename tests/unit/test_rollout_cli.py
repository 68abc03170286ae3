"""`voicecart rollout` on manifests (--isvc-file): the patches it prints are valid, and every
refusal is one clear line with a non-zero exit."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from typer.testing import CliRunner

from voicecart.cli import app
from voicecart.rollout import apply_merge_patch, canary_state, validate_kserve
from voicecart.rollout.manifests import load_documents

REPO = Path(__file__).resolve().parents[2]
CPU = REPO / "kserve" / "inferenceservice-cpu.yaml"
CANARY = REPO / "kserve" / "inferenceservice-gpu-canary-standard.yaml"
V2 = "gs://voicecart-models/registry/voicecart/versions/v0002"
runner = CliRunner()


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, ["rollout", *args])


def test_start_prints_a_patch_that_makes_a_valid_canary() -> None:
    result = invoke("start", "--isvc-file", str(CPU), "--storage-uri", V2, "--percent", "15")
    assert result.exit_code == 0, result.output
    patch = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    isvc = apply_merge_patch(load_documents(CPU.read_text())[0], patch)
    validate_kserve(isvc)
    state = canary_state(isvc)
    assert (state.percent, state.canary_uri, state.name) == (15, V2, "v0002")


def test_promote_and_rollback_of_the_charts_canary_print_their_patches() -> None:
    result = invoke("promote", "--isvc-file", str(CANARY))
    assert result.exit_code == 0, result.output
    assert '"name": "v0002"' in result.stdout and '"canary": null' in result.stdout
    result = invoke("rollback", "--isvc-file", str(CANARY))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[: result.stdout.rindex("}") + 1])["spec"] == {"canary": None}


def test_status_without_prometheus_shows_the_state() -> None:
    result = invoke("status", "--isvc-file", str(CANARY), "--json")
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert state["percent"] == 10 and state["canary_uri"] == V2
    result = invoke("status", "--isvc-file", str(CPU))
    assert "no canary running" in result.stdout and "Standard mode" in result.stdout


def test_refusals_are_one_line_and_exit_2() -> None:
    result = invoke("promote", "--isvc-file", str(CPU))
    assert result.exit_code == 2 and "has no canary running" in result.output
    result = invoke("start", "--isvc-file", str(CANARY), "--storage-uri", V2)
    assert result.exit_code == 2 and "already running" in result.output
    result = invoke("start", "--isvc-file", str(CPU), "--storage-uri", V2, "--percent", "0")
    assert result.exit_code == 2 and "--percent" in result.output
    assert "Traceback" not in result.output


def test_unreachable_prometheus_is_reported_not_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = invoke("status", "--isvc-file", str(CANARY), "--prometheus", f"http://127.0.0.1:{port}")
    # the chart-rendered canary has no start time: the controller says so before querying
    assert result.exit_code == 2 and "was not started by `voicecart rollout start`" in result.output


def test_a_file_without_one_isvc_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "two.yaml"
    bad.write_text(CPU.read_text() + "\n---\n" + CPU.read_text())
    result = invoke("status", "--isvc-file", str(bad))
    # typer's error box wraps long messages (the tmp path's length decides where): read it unwrapped
    words = " ".join(w for w in result.output.split() if w not in ("│", "╭", "╰"))
    assert result.exit_code == 2 and "exactly one InferenceService" in words, result.output


def test_watch_without_a_canary_exits_cleanly_for_cron_use() -> None:
    result = invoke("watch", "--isvc-file", str(CPU), "--prometheus", "http://127.0.0.1:9", "--max-looks", "1")
    assert result.exit_code == 0, result.output
    assert "no canary running" in result.output
