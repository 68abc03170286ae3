"""Leave-last-order-out on the real Instacart sample (skips when ../shared/data is absent)."""

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "instacart"

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not (SHARED / "order_lines_sample.csv").exists(),
                                 reason=f"Instacart sample not found at {SHARED}")]


def test_last_order_split_and_aisle_queries(tmp_path):
    from voicecart.data import write_dataset
    from voicecart.data import instacart
    from voicecart.evaluation import truth_ranks
    from voicecart.evaluation.resolution import _last_order_lists
    from voicecart.ranking import Purchases, parse
    from voicecart.ranking.baselines import most_bought_scores, popularity_scores

    tables, _ = instacart.load(SHARED)
    write_dataset(tables, tmp_path / "ic", source="instacart", source_path=str(SHARED))
    purchases = Purchases.from_dataset(tmp_path / "ic")
    history, test = purchases.last_order_split()
    assert len(history) + len(test) == len(purchases)
    assert len(np.unique(test.customer)) == len(np.unique(purchases.customer))  # one last order each
    assert len(np.unique(test.order)) == len(np.unique(test.customer))
    _, snap, q = _last_order_lists(purchases)
    hr1 = {n: (truth_ranks(s, q.label, q.offsets) == 1).mean() for n, s in {
        "popularity": popularity_scores(q, snap.catalog),
        "most_bought": most_bought_scores(q, snap.catalog, snap.history)}.items()}
    assert hr1["most_bought"] > 2 * hr1["popularity"]  # Instacart is repeat-heavy
    # the aisle name is a working text query over the real catalogue
    cands = snap.catalog.candidates(parse("add two gallons of milk please"), 20)
    titles = [snap.catalog.titles[i] or "" for i in cands.product]
    assert titles and sum("milk" in t.lower() for t in titles) >= len(titles) // 2
