"""The synthetic generator's planted brand switch: who switches, where, from when; nothing changes without it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow.compute as pc

from voicecart.data.synthetic import (SyntheticConfig, generate, preferred_product, preferred_product_on,
                                      subclass_of, switches)

CFG = SyntheticConfig(n_customers=400, mean_orders=12, seed=3)


def test_without_a_switch_day_nothing_changes_and_a_switch_after_the_data_changes_nothing() -> None:
    plain, _ = generate(CFG)
    late, _ = generate(replace(CFG, switch_day=10_000))
    assert plain.order_lines.equals(late.order_lines) and plain.orders.equals(late.orders)
    assert not switches(CFG, np.arange(100), np.arange(100)).any()


def test_about_the_share_of_customers_switch_in_about_the_share_of_subclasses() -> None:
    cfg = replace(CFG, switch_day=30, switch_share=0.2, switch_subclass_share=0.3)
    customers, subclasses = np.arange(5000), np.arange(cfg.n_subclasses)
    c = customers[:, None].repeat(len(subclasses), 1)
    s = subclasses[None, :].repeat(len(customers), 0)
    mask = switches(cfg, c, s)
    assert 0.15 < mask.any(axis=1).mean() < 0.25 and 0.2 < mask.any(axis=0).mean() < 0.4
    # a switcher switches in the same subclasses as every other switcher (the planted "some categories")
    rows = mask[mask.any(axis=1)]
    assert (rows == rows[0]).all()


def test_switchers_prefer_another_product_from_the_switch_day_and_buy_it() -> None:
    cfg = replace(CFG, switch_day=40, switch_share=0.5, switch_subclass_share=0.5, loyalty=1.0)
    c, s = np.arange(200), np.arange(200) % cfg.n_subclasses
    moved = switches(cfg, c, s)
    assert moved.any()
    before, after = preferred_product_on(cfg, c, s, 39), preferred_product_on(cfg, c, s, 40)
    assert (before == preferred_product(cfg, c, s)).all()
    assert (after[moved] != before[moved]).all() and (after[~moved] == before[~moved]).all()
    tables, _ = generate(cfg)
    lines = tables.order_lines.join(tables.orders, "order_id").to_pylist()
    checked = 0
    for line in lines:  # loyalty 1: every line is the customer's preferred product of its day
        customer, pid = int(line["customer_id"][1:]), line["product_id"]
        sub, slot = divmod(int(pid[1:]), 1000)
        day = (line["timestamp"] - cfg.start).days
        assert slot == preferred_product_on(cfg, np.array([customer]), np.array([sub]), day)[0]
        checked += bool(day >= 40 and switches(cfg, customer, sub))
    assert checked > 0


def test_numeric_codes_name_each_subclass_by_a_number() -> None:
    cfg = replace(CFG, numeric_codes=True)
    products = generate(cfg)[0].products
    codes = products.column("category_l3").to_pylist()
    assert all(c.isdigit() for c in codes)
    assert {subclass_of(cfg, c) for c in codes} == set(range(cfg.n_subclasses))
    assert subclass_of(CFG, "S12") == 12 and pc.count_distinct(products.column("category_l3")).as_py() == cfg.n_subclasses
