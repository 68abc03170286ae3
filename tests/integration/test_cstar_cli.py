"""The C-STAR commands end to end on a small synthetic shop with planted segments: pre-train, embed into the
Feast embedding file, export ONNX (same vectors in ONNX Runtime), and `voicecart evaluate cstar`."""

import json
from datetime import datetime

import numpy as np
import pytest
from typer.testing import CliRunner

from voicecart.cli import app
from voicecart.data import connect, write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CUT = "2020-02-20"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("cstar")
    tables, planted = generate(SyntheticConfig(n_customers=300, seed=5, mean_orders=16, mean_days_between=5))
    write_dataset(tables, root / "data", source="synthetic")
    return root, planted


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_pretrain_embed_export(shop):
    import onnxruntime as ort
    import pyarrow.parquet as pq
    import torch

    from voicecart.features import EMBEDDINGS_FILE
    from voicecart.trajectory import as_day, load_encoder, load_events
    from voicecart.trajectory.trajectories import batch_arrays

    root, _ = shop
    run("cstar", "pretrain", "--data", root / "data", "--out", root / "run", "--until", CUT, "--epochs", 2,
        "--batch-size", 64)
    assert (root / "run" / "checkpoint.pt").exists() and (root / "run" / "loss.png").exists()
    run("cstar", "embed", "--checkpoint", root / "run", "--data", root / "data", "--as-of", CUT,
        "--out", root / "emb.parquet", "--onnx", root / "cstar.onnx", "--feature-dir", root / "offline")
    table = pq.read_table(root / "emb.parquet")
    assert table.num_rows == 300 and table.column_names == ["customer_id", "event_timestamp", "embedding"]
    assert pq.read_table(root / "offline" / EMBEDDINGS_FILE).num_rows == 300

    model, vocab, _ = load_encoder(root / "run")
    cut = datetime.fromisoformat(CUT)
    enc = load_events(connect(root / "data"), until=cut).window(cut, max_events=model.cfg.max_events).encode(vocab)
    x = batch_arrays(enc, np.arange(4), as_day(cut), model.cfg.max_events)
    session = ort.InferenceSession(str(root / "cstar.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["embedding"], x)[0]
    with torch.no_grad():
        want = model(**{k: torch.from_numpy(v) for k, v in x.items()}).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    by_id = dict(zip(table.column("customer_id").to_pylist(), table.column("embedding").to_pylist()))
    np.testing.assert_allclose(by_id[enc.customer_ids[0]], want[0], atol=1e-4)


def test_bad_input_is_one_clear_line(shop, tmp_path):
    root, _ = shop
    result = CliRunner().invoke(app, ["cstar", "embed", "--checkpoint", str(tmp_path / "nothing"), "--data",
                                      str(root / "data"), "--out", str(tmp_path / "e.parquet")])
    assert result.exit_code == 1
    assert "no C-STAR checkpoint" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["cstar", "pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "manifest.json" in result.output


def test_evaluate_cstar_reports_every_task_and_recovers_planted_segments(shop):
    root, planted = shop
    out = root / "report.json"
    run("evaluate", "cstar", "--data", root / "data", "--test-from", "2020-03-01", "--json", out, "--epochs", 3,
        "--no-ablations", "--img-dir", root / "img", "--markdown", root / "report.md")
    report = json.loads(out.read_text())
    prof = report["profiling"]["age_group"]
    for method in ("cstar", "no_pretraining", "bag_of_categories", "category_mean", "tree_wasserstein_svd"):
        assert 0.0 <= prof[method]["accuracy"]["value"] <= 1.0
        lo, hi = prof[method]["accuracy"]["ci95"]
        assert lo <= prof[method]["accuracy"]["value"] <= hi
    # age groups are planted by segment (10% noise): pre-trained embeddings must find them far above chance
    assert prof["cstar"]["accuracy"]["value"] > prof["cstar"]["majority"] + 0.2
    comp = report["completion"]
    assert comp["test_customers"] > 50
    for method in ("popularity", "frequency_popularity", "head_without_embedding", "cstar"):
        assert 0.0 <= comp[method]["recall@10"]["value"] <= 1.0
    assert (root / "img" / "cstar_map.png").exists() and (root / "img" / "cstar_loss.png").exists()
    res = report["resolution"]  # the ranking engineer's ranker, with and without the embedding feature
    assert res["queries"] > 0
    for key in ("with_embedding", "without_embedding", "with_no_pretraining"):
        assert 0.0 <= res[key]["hr@1"]["value"] <= 1.0
    assert "hr@1_gain_over_no_pretraining" in res
    assert 0 < comp["tune_customers"] < comp["train_customers"]  # blend weights chosen on held-out customers
    gains = report["profiling"]["age_group"]["pretraining_gain"]
    assert {"accuracy", "macro_f1"} <= set(gains)
    assert "Item resolution" in (root / "report.md").read_text()
    refs = prof["references"]  # how much of the label the purchases carry, read by the same probe
    assert set(refs) == {"tfidf_all_subclasses", "rhythm_statistics", "bag_and_rhythm"}
    assert refs["rhythm_statistics"]["features"] == 14 and 0.0 <= refs["bag_and_rhythm"]["accuracy"]["value"] <= 1.0
    assert "How much of age_group the purchases carry" in (root / "report.md").read_text()
