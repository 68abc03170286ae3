"""The synthetic generator plants what it says, deterministically by seed."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from voicecart.data.store import validate_references
from voicecart.data.synthetic import SyntheticConfig, generate, preferred_product, segment_preferences

CFG = SyntheticConfig(n_customers=400, seed=3)


def test_same_seed_same_data_other_seed_other_data():
    a, _ = generate(CFG)
    b, _ = generate(CFG)
    c, _ = generate(SyntheticConfig(n_customers=400, seed=4))
    assert a.order_lines.equals(b.order_lines) and a.orders.equals(b.orders)
    assert not a.order_lines.equals(c.order_lines)


def test_references_are_consistent():
    tables, planted = generate(CFG)
    validate_references(tables)
    assert planted.num_rows == tables.customers.num_rows == CFG.n_customers
    assert tables.products.num_rows == CFG.n_products


def test_planted_brand_loyalty_is_recoverable_from_purchases():
    tables, _ = generate(CFG)
    lines = tables.order_lines.join(tables.orders, "order_id").to_pandas()
    lines["cust"] = lines["customer_id"].str[1:].astype(int)
    code = lines["product_id"].str[1:].astype(int)
    lines["sub"], lines["slot"] = code // 1000, code % 1000
    top = lines.groupby(["cust", "sub", "slot"])["quantity"].sum().reset_index()
    top = top.sort_values("quantity").groupby(["cust", "sub"]).tail(1)
    counts = lines.groupby(["cust", "sub"]).size().rename("n").reset_index()
    top = top.merge(counts, on=["cust", "sub"])
    top = top[top["n"] >= 3]  # enough lines to tell
    planted = preferred_product(CFG, top["cust"].to_numpy(), top["sub"].to_numpy())
    assert (top["slot"].to_numpy() == planted).mean() > 0.9


def test_planted_segments_shape_category_choice():
    tables, planted = generate(CFG)
    pref, routine = segment_preferences(CFG)
    lines = tables.order_lines.join(tables.orders, "order_id").join(tables.customers, "customer_id")
    df = lines.to_pandas().merge(planted.to_pandas(), on="customer_id")
    df["sub"] = df["product_id"].str[1:].astype(int) // 1000
    for seg in range(CFG.n_segments):
        subs = df.loc[df["segment"] == seg, "sub"]
        share_routine = subs.isin(routine[seg]).mean()
        assert share_routine > 0.45, (seg, share_routine)
    # segments determine age groups up to the label noise
    by_seg = df.drop_duplicates("customer_id").groupby("segment")["age_group"].agg(lambda s: s.value_counts(normalize=True).iloc[0])
    assert (by_seg > 0.8).all()


def test_orders_are_dated_in_sequence_per_customer():
    tables, _ = generate(CFG)
    orders = tables.orders.to_pandas().sort_values(["customer_id", "order_id"])
    orders["n"] = orders["order_id"].str.split("-").str[1].astype(int)
    orders = orders.sort_values(["customer_id", "n"])
    assert (orders.groupby("customer_id")["timestamp"].diff().dropna() > np.timedelta64(0, "h")).all()
    assert pc.min(tables.order_lines["quantity"]).as_py() >= 1
