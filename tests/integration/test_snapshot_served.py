"""ONE snapshot, two readers: the ranker's features for the same (customer, moment, candidates) built offline
from the snapshot training uses, and online by the served engine reading that snapshot materialized into a
real Feast store (SQLite: the profile row, the C-STAR embedding, the product statistics) — equal to 1e-6."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from voicecart.config import FeatureSettings
from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.features.build import write_embedding_table
from voicecart.features.offline_duckdb import DuckDBEngine
from voicecart.features.snapshot import as_of_day, build_snapshot, window_lines
from voicecart.features.store import offline_dir, publish
from voicecart.ranking import FEATURE_NAMES, Candidates, RankerConfig, SnapshotIndex, train_ranker
from voicecart.ranking.lists import list_features, walk
from voicecart.schemas.times import epoch_s, midnight

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("one-snapshot")
    tables, _ = generate(SyntheticConfig(n_customers=150, seed=5))
    write_dataset(tables, root / "data", source="synthetic")
    engine = DuckDBEngine(root / "data")
    busiest = engine.query("SELECT date_trunc('day', timestamp) AS d, COUNT(*) AS n FROM orders "
                           "GROUP BY 1 ORDER BY n DESC, d DESC LIMIT 1").column("d")[0].as_py()
    moment = midnight(busiest)  # the day with the most requests
    start = moment - timedelta(days=21)
    lines = as_of_day(window_lines(engine, start, moment + timedelta(days=1)))
    snapshot = build_snapshot(engine, lines, cuts=[start, moment], extra_moments=[moment])
    rng = np.random.default_rng(0)
    ids = sorted(set(tables.customers.column("customer_id").to_pylist()))
    emb = pa_embeddings(ids, [start, moment], rng)
    snapshot = snapshot.with_embeddings(emb)
    trained = train_ranker(snapshot, start=epoch_s(start), end=epoch_s(moment),
                           config=RankerConfig(epochs=1, use_embedding=True), log=lambda _: None)
    return {"root": root, "snapshot": snapshot, "trained": trained, "moment": moment, "embeddings": emb}


def pa_embeddings(ids: list[str], moments: list[datetime], rng: np.random.Generator):  # noqa: ANN201
    import pyarrow as pa

    from voicecart.trajectory.embed import embeddings_table

    return pa.concat_tables([embeddings_table(np.asarray(ids, dtype=object), m,
                                              rng.normal(size=(len(ids), 8)).astype(np.float32)) for m in moments])


def test_offline_snapshot_and_served_feast_rows_give_the_same_features(world, tmp_path):
    from voicecart.features.online import ProfileStore
    from voicecart.ranking.features import featurizer
    from voicecart.serving.bundle import catalog_with_stats, stats_from_feast

    snapshot, trained, moment = world["snapshot"], world["trained"], world["moment"]
    # offline: the lists of `moment` exactly as training and evaluation build them
    index = SnapshotIndex(snapshot, trained.catalog, {-np.inf: trained.catalog.vectors}, use_embedding=True)
    ((view, lists),) = [(v, q) for v, q in walk(index, epoch_s(moment), epoch_s(moment) + 1)]
    offline = list_features(view, lists, use_embedding=True)
    assert len(lists) > 10 and (offline[:, FEATURE_NAMES.index("has_embedding")] == 1).all()  # every row carries an embedding

    # online: the same snapshot materialized into Feast (SQLite), read the way the served engine reads it
    settings = FeatureSettings(store_dir=tmp_path / "store")
    offline_dir(settings).mkdir(parents=True)
    write_embedding_table(offline_dir(settings), world["embeddings"])
    publish(world["root"] / "data", settings, moment)
    store = ProfileStore.from_settings(settings)
    catalog = catalog_with_stats(trained.catalog, stats_from_feast(settings)())
    assert catalog.stats.moment == epoch_s(moment)
    featurize = featurizer("features", batched=False)
    for i in range(len(lists)):
        lo, hi = lists.offsets[i], lists.offsets[i + 1]
        profile = store.get(str(lists.customer_id[i]))
        cands = Candidates(lists.product[lo:hi], np.zeros(hi - lo, np.float32), np.ones(hi - lo, np.float32))
        online = featurize(profile, cands, catalog, catalog.stats.moment)["features"]
        np.testing.assert_allclose(online, offline[lo:hi], rtol=1e-6, atol=1e-6, err_msg=f"list {i}")
