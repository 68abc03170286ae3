"""`voicecart evaluate resolution --split online` end to end on planted-preference data."""

import json

import pytest
from typer.testing import CliRunner

from voicecart.cli import app

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_online_split_scores_every_method_and_the_ranker_learns(tmp_path):
    data = tmp_path / "syn"
    res = runner.invoke(app, ["data", "prepare", "--source", "synthetic", "--customers", "200", "--out", str(data)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "online.json"
    res = runner.invoke(app, ["evaluate", "resolution", "--data", str(data), "--split", "online", "--test-from",
                              "2020-04-01", "--epochs", "2", "--boot", "50", "--json", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"random", "popularity", "recent_popularity", "most_bought_else_popularity",
                                      "most_bought_else_recent_popularity", "tifu_knn", "ranker"}
    hr1 = {m: v["all"]["hr@1"] for m, v in report["methods"].items()}
    assert hr1["ranker"]["low"] > hr1["random"]["high"]
    assert hr1["ranker"]["value"] > hr1["popularity"]["value"]
    assert report["info"]["protocol"].startswith("online")


def test_online_split_needs_a_test_day(tmp_path):
    res = runner.invoke(app, ["evaluate", "resolution", "--data", str(tmp_path), "--split", "online"])
    assert res.exit_code != 0 and "--test-from" in res.output
