"""`voicecart data prepare|describe` as a person types them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from voicecart.cli import app

runner = CliRunner()


def test_prepare_then_describe_synthetic(tmp_path):
    out = tmp_path / "synth"
    result = runner.invoke(app, ["data", "prepare", "--source", "synthetic", "--customers", "200", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "planted.parquet").exists()
    result = runner.invoke(app, ["data", "describe", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"]["customers"] == 200 and summary["source"] == "synthetic"


def test_bad_input_exits_non_zero_with_the_reason(tmp_path):
    src = tmp_path / "lines.csv"
    src.write_text("customer_id,timestamp,product_id,quantity,price\nc1,2024-01-01,p1,0,1.0\n")
    result = runner.invoke(app, ["data", "prepare", "--source", "lines", "--path", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "quantity must be a positive number" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["data", "describe", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "manifest.json is missing" in result.output
