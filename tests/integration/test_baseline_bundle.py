"""A baseline exported as a bundle ranks every list exactly like the baseline's own rule, and serves.

The demo serves such a bundle when the gate refuses the first challenger (no champion yet).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from voicecart.export.baseline import RULES, BaselineRanker, build_baseline_bundle, exportable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CUT = "2020-03-01"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from voicecart.data.prepare import prepare
    from voicecart.data.synthetic import SyntheticConfig

    folder = tmp_path_factory.mktemp("synthetic") / "data"
    prepare("synthetic", folder, synthetic_config=SyntheticConfig(n_customers=200, mean_orders=8, seed=3))
    return folder


@pytest.fixture(scope="module")
def window(data: Path):  # noqa: ANN201
    """Four days of queries after the cut, every list featurized from the snapshot as served (online protocol)."""
    from datetime import timedelta

    from voicecart.evaluation.resolution import evaluation_window, protocol_snapshot
    from voicecart.features.offline_duckdb import DuckDBEngine
    from voicecart.ranking.catalog import Catalog
    from voicecart.schemas.times import epoch_s

    cut = datetime.fromisoformat(CUT).replace(tzinfo=timezone.utc)
    snapshot = protocol_snapshot(DuckDBEngine(data), "online", cut, cut + timedelta(days=4))
    catalog = Catalog.from_table(snapshot.catalog)
    return evaluation_window(snapshot, catalog, epoch_s(cut), epoch_s(cut + timedelta(days=4)),
                             log=lambda _: None), catalog


def _ranks(scores: np.ndarray, window) -> np.ndarray:  # noqa: ANN001
    from voicecart.evaluation.metrics import truth_ranks

    return truth_ranks(scores, window.queries.label, window.queries.offsets)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_exported_rule_ranks_every_list_like_the_baseline(rule: str, window, tmp_path: Path) -> None:  # noqa: ANN001
    import onnxruntime as ort

    from voicecart.ranking.catalog import Catalog

    window, frozen = window
    q = window.queries
    assert len(q) > 100
    catalog = tmp_path / "catalog.pkl"
    frozen.save(catalog)
    bundle = build_baseline_bundle(rule, catalog, tmp_path / "bundle")
    session = ort.InferenceSession(str(bundle / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    scores = np.zeros(len(q.product), dtype=np.float32)
    for i in range(len(q)):  # one request per list, through the exported ONNX graph as serving scores it
        lo, hi = q.offsets[i], q.offsets[i + 1]
        scores[lo:hi] = session.run(None, {"features": window.features[lo:hi][None]})[0][0]
    assert np.array_equal(_ranks(scores, window), _ranks(window.baselines[rule], window))
    assert list(Catalog.load(bundle / "model" / "catalog.pkl").product_ids) == list(frozen.product_ids)


def test_padding_rows_never_outrank_a_candidate() -> None:
    import torch

    from voicecart.ranking.features import FEATURE_NAMES

    pop = FEATURE_NAMES.index("log_popularity")
    x = torch.zeros(1, 4, len(FEATURE_NAMES))
    x[0, 0, pop] = 0.0  # a real candidate nobody bought yet (log_popularity 0) ...
    x[0, 1, pop] = 2.0
    scores = BaselineRanker("popularity")(x)[0]  # ... rows 2, 3 are zero padding
    assert scores[1] == 0 and scores[0] == scores[2] == scores[3] == -1


def test_only_rules_the_feature_vector_holds_are_exportable() -> None:
    assert exportable("baseline:most_bought_else_recent_popularity") and exportable("popularity")
    assert not exportable("baseline:tifu_knn") and not exportable("baseline:random")
    with pytest.raises(ValueError, match="no exportable baseline 'tifu_knn'"):
        BaselineRanker("tifu_knn")


def test_the_local_endpoint_answers_from_the_baseline_bundle(data: Path, tmp_path: Path) -> None:
    import httpx

    from voicecart.cli.pipeline import _sample_requests
    from voicecart.serving.local import LocalServer

    from voicecart.export.model import bundle_from_dataset

    # the baseline answers from the catalogue export-bundle writes (the challenger bundle's)
    challenger = bundle_from_dataset(data, tmp_path / "challenger", epochs=1)
    bundle = build_baseline_bundle("most_bought_else_recent_popularity", challenger / "model" / "catalog.pkl",
                                   tmp_path / "b")
    with LocalServer(bundle, "--profiles-from", str(data), log_path=tmp_path / "serve.log") as server:
        for request in _sample_requests(data):
            answer = httpx.post(f"{server.url}/v1/models/voicecart:predict", json={"instances": [request]}, timeout=30)
            assert answer.status_code == 200, answer.text
            prediction = answer.json()["predictions"][0]
            assert prediction["model_version"] == "baseline-most_bought_else_recent_popularity"
            assert prediction["product"]["id"]
            assert prediction["personalized"] == (request["customer_id"] != "no-such-customer")
