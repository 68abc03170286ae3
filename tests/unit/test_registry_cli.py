"""`voicecart model list|show|promote|rollback` on a real registry folder."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from voicecart.cli import app
from voicecart.export import build_bundle
from voicecart.registry import Registry, feature_schema_hash
from voicecart.schemas import ModelMetadata

runner = CliRunner()


@pytest.fixture()
def registry(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(-2))
    meta = ModelMetadata(name="voicecart", version="draft", created_at=datetime.now(timezone.utc),
                         metrics={"hr@1": 0.31}, feature_schema_hash=feature_schema_hash(["a", "b", "c"]))
    bundle = build_bundle(model, {"features": np.ones((1, 4, 3), dtype=np.float32)}, tmp_path / "b", meta, mar=False)
    reg = Registry(tmp_path / "reg")
    reg.promote(reg.publish(bundle), "first")
    reg.publish(bundle, extra={"gate": "refused"})
    return tmp_path / "reg"


def test_list_show_promote_rollback(registry: Path) -> None:
    out = runner.invoke(app, ["model", "list", "--registry", str(registry), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [(r["version"], r["champion"]) for r in rows] == [("v0001", True), ("v0002", False)]
    assert rows[1]["extra"]["gate"] == "refused"

    shown = json.loads(runner.invoke(app, ["model", "show", "--registry", str(registry)]).output)
    assert shown["version"] == "v0001" and shown["metadata"]["metrics"]["hr@1"] == 0.31

    assert runner.invoke(app, ["model", "promote", "v0002", "--registry", str(registry),
                               "--reason", "hand-checked"]).exit_code == 0
    assert Registry(registry).champion() == "v0002"
    assert runner.invoke(app, ["model", "rollback", "--registry", str(registry)]).exit_code == 0
    assert Registry(registry).champion() == "v0001"
    assert Registry(registry).pointer().history[1].reason == "hand-checked"


def test_bad_version_is_a_clear_error_not_a_trace(registry: Path) -> None:
    out = runner.invoke(app, ["model", "promote", "v0099", "--registry", str(registry)])
    assert out.exit_code == 2
    assert "no version 'v0099'" in out.output and "Traceback" not in out.output

