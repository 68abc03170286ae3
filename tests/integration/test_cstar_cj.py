"""`voicecart evaluate cstar` on a Complete Journey dataset picks the household tasks and repeated
cross-validation by itself: a small synthetic shop written as that source, with household labels planted by
segment, so the probes have something to find."""

import json

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from voicecart.cli import app
from voicecart.data import write_dataset
from voicecart.data.store import CanonicalTables
from voicecart.data.synthetic import SyntheticConfig, generate

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def households(tmp_path_factory):
    root = tmp_path_factory.mktemp("cstar-cj")
    tables, planted = generate(SyntheticConfig(n_customers=240, seed=7, mean_orders=14, mean_days_between=5))
    segment = planted.column("segment").to_numpy()
    labelled = np.arange(len(segment)) % 3 != 0  # a third of the households has no demographics, as in the release
    label = lambda values: pa.array([values[s] if keep else None for s, keep in zip(segment, labelled)])  # noqa: E731
    customers = tables.customers.append_column("kids_count", label(["0", "2", "0", "3+", "1"])) \
        .append_column("household_size", label(["1", "4", "2", "5+", "3"])) \
        .append_column("income_band", label(["Under 15K", "50-74K", "250K+", "35-49K", "100-124K"]))
    write_dataset(CanonicalTables(customers, tables.products, tables.orders, tables.order_lines), root / "data",
                  source="completejourney")
    return root


def test_household_tasks_with_repeated_cross_validation(households):
    root = households
    out = root / "report.json"
    result = CliRunner().invoke(app, [str(a) for a in (
        "evaluate", "cstar", "--data", root / "data", "--test-from", "2020-03-01", "--json", out, "--epochs", 2,
        "--batch-size", 64, "--cv-repeats", 3, "--no-ablations", "--no-resolution", "--img-dir", root / "img",
        "--markdown", root / "report.md")])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["profiling"]) == {"has_kids", "household_size", "income_band"}
    kids = report["profiling"]["has_kids"]
    assert kids["cstar"]["classes"] == 2 and kids["cstar"]["repeats"] == 3
    assert kids["cstar"]["customers"] <= 160  # only households with labels and history
    for method in ("cstar", "no_pretraining", "bag_of_categories"):
        lo, hi = kids[method]["accuracy"]["ci95"]
        assert lo <= kids[method]["accuracy"]["value"] <= hi
    # kids are planted by segment: the bag of categories reads them far above the majority share
    assert kids["bag_of_categories"]["accuracy"]["ci95"][0] > kids["bag_of_categories"]["majority"]
    gain = kids["pretraining_gain"]["accuracy"]
    assert gain["ci95"][0] <= gain["value"] <= gain["ci95"][1]
    assert "3 x 5-fold stratified cross-validation" in (root / "report.md").read_text()
    assert (root / "img" / "cstar_map_cj.png").exists() and (root / "img" / "cstar_loss_cj.png").exists()
    assert report["completion"]["test_customers"] > 50


def test_an_unknown_label_is_one_clear_line(households):
    result = CliRunner().invoke(app, ["evaluate", "cstar", "--data", str(households / "data"), "--labels",
                                      "has_kids,shoe_size", "--no-resolution"])
    assert result.exit_code == 1
    assert "unknown profiling label(s) shoe_size" in " ".join(result.output.split())
    assert "Traceback" not in result.output
