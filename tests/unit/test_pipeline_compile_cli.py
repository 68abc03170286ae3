"""`voicecart pipeline compile` writes the same IR the drift test checks."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from voicecart.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_pipeline_compile_command_writes_the_checked_in_ir(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["pipeline", "compile", "--out", str(tmp_path / "p.yaml")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "p.yaml").read_text() == (ROOT / "pipelines" / "training.yaml").read_text()


def test_pipeline_run_without_local_or_host_is_refused() -> None:
    out = CliRunner().invoke(app, ["pipeline", "run"])
    assert out.exit_code == 2
    assert "--local" in out.output and "Traceback" not in out.output
