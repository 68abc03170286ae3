"""`voicecart evaluate resolution` and `voicecart ranker train` end to end on planted-preference data."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from voicecart.cli import app

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "syn"
    res = runner.invoke(app, ["data", "prepare", "--source", "synthetic", "--customers", "200", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize("split_args", [["--split", "last-order"], ["--test-from", "2020-04-01"]])
def test_evaluate_resolution_writes_every_method_and_the_ranker_finds_planted_preferences(synthetic, tmp_path, split_args):
    out = tmp_path / "metrics.json"
    res = runner.invoke(app, ["evaluate", "resolution", "--data", str(synthetic), *split_args, "--json", str(out),
                              "--no-tifu", "--epochs", "2", "--boot", "50", "--plot", str(tmp_path / "chart.png")])
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"random", "popularity", "recent_popularity", "most_bought_else_popularity",
                                      "most_bought_else_recent_popularity", "ranker"}
    hr1 = {m: v["all"]["hr@1"] for m, v in report["methods"].items()}
    assert hr1["ranker"]["low"] > hr1["random"]["high"]  # planted preferences are learnable
    assert hr1["ranker"]["value"] > hr1["most_bought_else_popularity"]["value"]
    for v in report["methods"].values():
        assert v["with_category_history"]["n"] + v["without_category_history"]["n"] == v["all"]["n"]
    assert (tmp_path / "chart.png").stat().st_size > 1000


def test_ranker_train_writes_a_servable_bundle(synthetic, tmp_path):
    import onnxruntime as ort

    from voicecart.config import ServingSettings
    from voicecart.ranking import TrainedRanker
    from voicecart.schemas import ResolveRequest
    from voicecart.ranking.features import featurizer
    from voicecart.serving.engine import ResolutionEngine, ServingModel
    from voicecart.serving.predictor_onnx import OnnxScorer

    res = runner.invoke(app, ["ranker", "train", "--data", str(synthetic), "--as-of", "2020-04-01",
                              "--out", str(tmp_path / "m"), "--epochs", "1"])
    assert res.exit_code == 0, res.output
    trained = TrainedRanker.load(tmp_path / "m")
    session = ort.InferenceSession(str(tmp_path / "m" / "ranker.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(1, 12, trained.ranker.config.n_features)).astype(np.float32)
    np.testing.assert_allclose(session.run(["scores"], {"features": x})[0][0], trained.ranker.score(x[0]), atol=1e-5)
    catalog = trained.catalog
    assert catalog.vectors is not None and catalog.stats.popularity.sum() > 0  # its cut's vectors and statistics
    model = ServingModel("m", catalog, OnnxScorer(tmp_path / "m" / "ranker.onnx"), featurizer("features", True),
                         catalog.stats.moment)
    answer = ResolutionEngine(model, None, ServingSettings()).resolve(
        ResolveRequest(customer_id="c", utterance="add two milks please"))
    assert answer.quantity == 2 and "milk" in (answer.product.title or "")


def _flat(output: str) -> str:
    """The words of a CLI message, without the error box rich draws around it (it wraps long paths)."""
    return " ".join(output.replace("│", " ").split())


def test_bad_arguments_are_clear_errors(synthetic, tmp_path):
    res = runner.invoke(app, ["evaluate", "resolution", "--data", str(tmp_path / "missing"), "--test-from", "2020-04-01"])
    assert res.exit_code != 0 and "not a prepared dataset" in _flat(res.output)
    res = runner.invoke(app, ["evaluate", "resolution", "--data", str(synthetic), "--test-from", "April"])
    assert res.exit_code != 0 and "is not a date" in _flat(res.output)
    res = runner.invoke(app, ["evaluate", "resolution", "--data", str(synthetic), "--split", "sideways"])
    assert res.exit_code != 0 and "sideways" in _flat(res.output)
