"""Pre-training on a tiny synthetic shop: losses fall, checkpoints resume, NaN stops with the checkpoint kept,
embeddings land in the parquet layout the Feast view reads."""

from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.trajectory import (CategoryVocab, CStarConfig, TrainConfig, TrainingDiverged, as_day, embed_events,
                                  embed_history, load_encoder, load_events, pretrain, read_embeddings,
                                  write_embeddings)

CUT = datetime(2020, 3, 1)


@pytest.fixture(scope="module")
def shop():
    tables, _ = generate(SyntheticConfig(n_customers=120, seed=3))
    events = load_events(tables)
    window = events.window(CUT, max_events=32)
    vocab = CategoryVocab.from_paths(window.l1, window.l2, window.l3)
    return tables, events, window.encode(vocab), vocab


def small(vocab, **kw):
    return CStarConfig(*vocab.sizes, dim=8, d_model=16, n_heads=2, d_ff=32, max_events=32, **kw)


def test_pretraining_lowers_the_loss_and_writes_curves(shop, tmp_path):
    _, _, enc, vocab = shop
    torch.set_num_threads(1)
    res = pretrain(enc, vocab, as_day(CUT), small(vocab), TrainConfig(epochs=6, batch_size=32), tmp_path)
    first = np.mean([h["loss"] for h in res.history[:4]])
    last = np.mean([h["loss"] for h in res.history[-4:]])
    assert last < first
    assert (tmp_path / "loss.png").stat().st_size > 0 and (tmp_path / "checkpoint.pt").exists()


def test_resume_continues_from_the_checkpoint(shop, tmp_path):
    _, _, enc, vocab = shop
    cfg = small(vocab)
    one = pretrain(enc, vocab, as_day(CUT), cfg, TrainConfig(epochs=1, batch_size=32), tmp_path)
    two = pretrain(enc, vocab, as_day(CUT), cfg, TrainConfig(epochs=2, batch_size=32), tmp_path, resume=True)
    assert len(two.history) == 2 * len(one.history)
    assert two.history[: len(one.history)] == one.history
    with pytest.raises(ValueError, match="another model config"):
        pretrain(enc, vocab, as_day(CUT), small(vocab, n_layers=1), TrainConfig(epochs=3, batch_size=32), tmp_path)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(shop, tmp_path):
    _, _, enc, vocab = shop
    pretrain(enc, vocab, as_day(CUT), small(vocab), TrainConfig(epochs=1, batch_size=32), tmp_path)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    bad = small(vocab, loss_weights={"structure": float("nan"), "masked": 1.0, "consistency": 1.0})
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1, step 1.*last good checkpoint"):
        pretrain(enc, vocab, as_day(CUT), bad, TrainConfig(epochs=1, batch_size=32), tmp_path, resume=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_embeddings_parquet_and_online_path_agree(shop, tmp_path):
    tables, events, enc, vocab = shop
    res = pretrain(enc, vocab, as_day(CUT), small(vocab), TrainConfig(epochs=1, batch_size=32), tmp_path)
    emb = embed_events(res.model, enc, as_day(CUT))
    assert emb.shape == (len(enc), 8) and emb.dtype == np.float32 and np.isfinite(emb).all()
    path = write_embeddings(tmp_path / "emb.parquet", enc.customer_ids, CUT, emb)
    schema = pq.read_schema(path)
    assert schema.names == ["customer_id", "event_timestamp", "embedding"]
    assert schema.field("embedding").type.value_type == pa.float32()
    ids, back = read_embeddings(path)
    np.testing.assert_array_equal(back, emb)
    # online: one customer's rows through the same code give the same vector
    model, vocab2, _ = load_encoder(tmp_path)
    one = load_events(tables, customers=[str(ids[5])])
    np.testing.assert_allclose(embed_history(model, vocab2, one, CUT)[0], emb[5], atol=1e-5)


def test_loading_a_missing_checkpoint_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="cstar pretrain"):
        load_encoder(tmp_path)


def test_buyer_centroids_point_at_the_customers_who_buy_a_product(shop):
    import duckdb

    from voicecart.trajectory import buyer_centroids

    tables, _, enc, _ = shop
    con = duckdb.connect()
    for name in ("orders", "order_lines"):
        con.register(name, tables[name])
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(enc), 4)).astype(np.float32)
    products, vectors = buyer_centroids(con, enc.customer_ids, emb, CUT)
    assert vectors.shape == (len(products), 4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # a product bought by exactly one customer points at that customer
    pairs = con.sql("SELECT l.product_id, min(o.customer_id) c, count(DISTINCT o.customer_id) n FROM orders o "
                    "JOIN order_lines l USING (order_id) WHERE o.timestamp < ? GROUP BY 1 HAVING n = 1 LIMIT 1",
                    params=[CUT]).fetchall()
    pid, cid, _ = pairs[0]
    i = list(enc.customer_ids).index(cid)
    np.testing.assert_allclose(vectors[list(products).index(pid)], emb[i] / np.linalg.norm(emb[i]), atol=1e-5)


def test_next_basket_split_cuts_before_a_later_basket_and_targets_its_subclasses(shop):
    from voicecart.trajectory.pretrain import next_basket_split

    _, _, enc, vocab = shop
    rows = np.flatnonzero(enc.lengths > 0)[:40]
    ends, as_of, target = next_basket_split(enc, rows, as_day(CUT), vocab.sizes[2], np.random.default_rng(0))
    n_baskets = [len(np.unique(enc.basket[enc.offsets[r]:enc.offsets[r + 1]])) for r in rows]
    for i, r in enumerate(rows):
        s, e = enc.offsets[r], enc.offsets[r + 1]
        if n_baskets[i] < 2:  # nothing to predict: whole window, no target
            assert ends[i] == e and target[i].sum() == 0 and as_of[i] == as_day(CUT)
            continue
        assert s < ends[i] < e and enc.basket[ends[i]] != enc.basket[ends[i] - 1]  # a basket starts there
        assert as_of[i] == enc.day[ends[i]]
        basket = enc.basket[ends[i]]
        truth = set(enc.l3[s:e][enc.basket[s:e] == basket].tolist())
        assert set(torch.nonzero(target[i]).squeeze(1).tolist()) == truth
        assert abs(float(target[i].sum()) - 1.0) < 1e-6
    assert max(n_baskets) >= 2


def test_pretraining_teaches_the_next_basket_head(shop):
    from voicecart.trajectory.model import CStar, next_basket_loss
    from voicecart.trajectory.pretrain import next_basket_split, to_tensors
    from voicecart.trajectory.trajectories import batch_arrays

    _, _, enc, vocab = shop
    torch.set_num_threads(1)
    rows = np.flatnonzero(enc.lengths > 0)
    ends, as_of, target = next_basket_split(enc, rows, as_day(CUT), vocab.sizes[2], np.random.default_rng(1))
    x = to_tensors(batch_arrays(enc, rows, as_of, 32, ends=ends))

    def loss(model):
        with torch.no_grad():
            return float(next_basket_loss(model, model.encode(x)[0], target))
    torch.manual_seed(0)
    before = loss(CStar(small(vocab)).eval())
    res = pretrain(enc, vocab, as_day(CUT), small(vocab), TrainConfig(epochs=40, batch_size=32), None)
    # the bar: the cross-entropy of predicting every basket with the subclasses' overall shares
    has = target.sum(1) > 0
    share = (target[has].sum(0) + 1e-3) / (target[has].sum(0) + 1e-3).sum()
    popularity = float(-(target[has] * share.log()).sum(1).mean())
    assert loss(res.model) < min(before, popularity)

