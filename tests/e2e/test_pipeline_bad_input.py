"""Bad input stops the pipeline at the step that found it, the champion keeps serving, the run is recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TAFENG_ZIP = SHARED / "tafeng" / "ta_feng.csv.zip"
WINDOW = dict(window_start="2000-11-01", window_end="2001-03-01")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 1,000-customer real slice, a trained and exported ranker, and a registry whose champion it is."""
    if not TAFENG_ZIP.exists():
        pytest.skip(f"real Ta-Feng not found at {TAFENG_ZIP} (../shared/data is absent)")
    from voicecart.data.prepare import prepare
    from voicecart.data.window import prepare_window
    from voicecart.export.model import export_model
    from voicecart.features.snapshot import snapshot_step
    from voicecart.ranking.train import train_step

    tmp = tmp_path_factory.mktemp("bad")
    prepare("tafeng", tmp / "tafeng", path=TAFENG_ZIP)
    data = tmp / "slice"
    prepare_window("prepared", tmp / "tafeng", data, test_from="2001-02-01", max_customers=1000, **WINDOW)
    snapshot_step(data, None, tmp / "snapshot", test_from="2001-02-01", window_end=WINDOW["window_end"])
    train_step(tmp / "snapshot", tmp / "model", test_from="2001-02-01", epochs=1, log=lambda _: None)
    export_model(tmp / "model", tmp / "snapshot", tmp / "bundle", test_from="2001-02-01", held_out=8, mar=False,
                 **WINDOW)
    return {"tmp": tmp, "data": data, "snapshot": tmp / "snapshot", "bundle": tmp / "bundle", "tafeng": tmp / "tafeng"}


def _registry_with_champion(world: dict, where: Path, *, schema_hash: str | None = None):  # noqa: ANN202
    from voicecart.registry import Registry

    bundle = world["bundle"]
    if schema_hash is not None:
        bundle = where / "other-bundle"
        shutil.copytree(world["bundle"], bundle)
        meta = json.loads((bundle / "metadata.json").read_text())
        meta["feature_schema_hash"] = schema_hash
        (bundle / "metadata.json").write_text(json.dumps(meta))
    reg = Registry(where / "registry")
    reg.promote(reg.publish(bundle), "champion for the test")
    return reg


def test_missing_data_for_the_window_stops_at_prepare(world: dict, tmp_path: Path) -> None:
    from voicecart.data import DataError
    from voicecart.data.window import prepare_window

    with pytest.raises(DataError, match="no orders between 2002-01-01 and 2002-03-01"):
        prepare_window("prepared", world["tafeng"], tmp_path / "out", window_start="2002-01-01",
                       window_end="2002-03-01")
    with pytest.raises(DataError, match="no orders from 2001-03-01 .* nothing to evaluate on"):
        prepare_window("prepared", world["tafeng"], tmp_path / "out", test_from="2001-03-01", **WINDOW)
    assert not (tmp_path / "out").exists()


def test_corrupt_champion_stops_the_evaluation_and_keeps_serving(world: dict, tmp_path: Path) -> None:
    from voicecart.registry import BundleError
    from voicecart.promotion import evaluate_update

    reg = _registry_with_champion(world, tmp_path)
    onnx = tmp_path / "registry" / "voicecart" / "versions" / "v0001" / "onnx" / "model.onnx"
    onnx.write_bytes(b"not an onnx graph")
    with pytest.raises(BundleError, match="onnx/model.onnx does not match its checksum"):
        evaluate_update(world["snapshot"], world["bundle"], str(tmp_path / "registry"), test_from="2001-02-01",
                        window_end=WINDOW["window_end"])
    assert reg.champion() == "v0001" and reg.versions() == ["v0001"]


def test_incompatible_champion_stops_the_evaluation(world: dict, tmp_path: Path) -> None:
    from voicecart.registry import IncompatibleBundleError
    from voicecart.promotion import evaluate_update

    reg = _registry_with_champion(world, tmp_path, schema_hash="0" * 64)
    with pytest.raises(IncompatibleBundleError, match="feature schema 000000000000"):
        evaluate_update(world["snapshot"], world["bundle"], str(tmp_path / "registry"), test_from="2001-02-01",
                        window_end=WINDOW["window_end"])
    assert reg.champion() == "v0001"


def test_failed_pipeline_run_is_recorded_with_its_step_and_error(world: dict, tmp_path: Path) -> None:
    from voicecart.cli.pipeline import _import_pipeline, run_local
    from voicecart.registry import Registry

    reg = _registry_with_champion(world, tmp_path)
    summary = run_local(_import_pipeline(), dict(
        registry_uri=str(tmp_path / "registry"), source="prepared", source_path=str(world["tafeng"]),
        window_start="2002-01-01", test_from="2002-02-01", window_end="2002-03-01", run_name="no-data"),
        tmp_path / "runs")
    assert summary["state"] == "FAILED"
    record = Registry(tmp_path / "registry").runs()[-1]
    assert record["run_id"] == "no-data" and record["state"] == "FAILED"
    assert record["failed_step"] == "prepare-data"
    assert "no orders between 2002-01-01 and 2002-03-01" in record["error_message"]
    assert reg.champion() == "v0001"
