"""Feature SQL: exact values on a hand-written dataset, point-in-time cut-offs, BigQuery transpilation."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from voicecart.data import CanonicalTables, connect, write_dataset
from voicecart.features import (
    EMBEDDINGS_FILE,
    QUERIES,
    FeatureStoreError,
    build_features,
    feature_table,
    profiles_as_of,
    render,
    to_bigquery,
    write_embeddings,
)
from voicecart.schemas import CustomerProfile
from voicecart.schemas.canonical import arrow_schema

# (order_id, customer_id, timestamp, [(product_id, quantity, unit price)])
TOY_ORDERS = [
    ("o1", "c1", datetime(2001, 1, 1), [("p1", 2.0, 10.0), ("p2", 1.0, 5.0)]),
    ("o2", "c1", datetime(2001, 1, 5), [("p1", 1.0, 12.0), ("p3", 1.0, 7.0)]),
    ("o3", "c1", datetime(2001, 1, 11), [("p2", 1.0, 5.0)]),
    ("o4", "c2", datetime(2001, 1, 3), [("p3", 3.0, 7.0)]),
    # Planted: bought after every example stamped before 2001-01-20 12:00. Must never leak there.
    ("o5", "c1", datetime(2001, 1, 20, 12), [("p9", 1.0, 99.0)]),
]
TOY_PRODUCTS = [("p1", "10", "1001", "100101"), ("p2", "10", "1001", "100102"),
                ("p3", "20", "2001", "200101"), ("p9", "20", "2001", "200101")]
AS_OF = datetime(2001, 1, 15)


def toy_dataset(folder: Path, orders=TOY_ORDERS) -> Path:
    """Write the hand-written dataset as a prepared canonical dataset and return its folder."""
    def table(name: str, rows: list[dict]) -> pa.Table:
        return pa.Table.from_pylist(rows, schema=arrow_schema(name))

    tables = CanonicalTables(
        customers=table("customers", [{"customer_id": c} for c in ("c1", "c2", "c3")]),
        products=table("products", [{"product_id": p, "category_l1": a, "category_l2": b, "category_l3": c}
                                    for p, a, b, c in TOY_PRODUCTS]),
        orders=table("orders", [{"order_id": o, "customer_id": c, "timestamp": t} for o, c, t, _ in orders]),
        order_lines=table("order_lines", [{"order_id": o, "product_id": p, "quantity": q, "price": pr}
                                          for o, _, _, lines in orders for p, q, pr in lines]),
    )
    write_dataset(tables, folder, source="toy")
    return folder


def epoch(t: datetime) -> float:
    return t.replace(tzinfo=timezone.utc).timestamp()


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = connect(toy_dataset(tmp_path_factory.mktemp("toy") / "data"))
    yield c
    c.close()


def rows_by(table: pa.Table, key: str) -> dict[str, dict]:
    return {r[key]: r for r in table.to_pylist()}


def test_profile_row_holds_customer_features_and_parallel_product_arrays(con):
    rows = rows_by(profiles_as_of(con, AS_OF), "customer_id")
    assert set(rows) == {"c1", "c2"}, "c3 has no orders before as_of: no profile row"
    c1 = rows["c1"]
    assert c1["order_count"] == 3
    assert c1["mean_basket_size"] == pytest.approx(5 / 3)
    assert c1["mean_days_between_orders"] == pytest.approx(5.0)
    assert c1["last_order_ts"] == epoch(datetime(2001, 1, 11))
    # most bought first; ties broken by the most recent purchase
    assert c1["product_ids"] == ["p2", "p1", "p3"]
    assert c1["product_counts"] == [2.0, 2.0, 1.0]
    assert c1["product_last_ts"] == [epoch(datetime(2001, 1, 11)), epoch(datetime(2001, 1, 5)),
                                     epoch(datetime(2001, 1, 5))]
    assert c1["event_timestamp"] == AS_OF.replace(tzinfo=timezone.utc)
    c2 = rows["c2"]
    assert (c2["order_count"], c2["mean_days_between_orders"], c2["product_ids"]) == (1, None, ["p3"])


def test_every_profile_row_is_a_valid_customer_profile(con):
    for row in profiles_as_of(con, datetime(2001, 2, 1)).to_pylist():
        profile = CustomerProfile(**{k: v for k, v in row.items() if k != "event_timestamp"},
                                  as_of=row["event_timestamp"])
        assert profile.has_history


def test_orders_at_or_after_as_of_are_not_counted(con):
    before = rows_by(profiles_as_of(con, datetime(2001, 1, 20, 12)), "customer_id")["c1"]
    after = rows_by(profiles_as_of(con, datetime(2001, 1, 20, 12, 0, 1)), "customer_id")["c1"]
    assert "p9" not in before["product_ids"] and before["order_count"] == 3
    assert "p9" in after["product_ids"] and after["order_count"] == 4


def test_several_snapshots_stack_with_their_own_timestamps(con):
    table = profiles_as_of(con, [datetime(2001, 1, 4), AS_OF])
    c1 = sorted((r for r in table.to_pylist() if r["customer_id"] == "c1"), key=lambda r: r["event_timestamp"])
    assert [r["order_count"] for r in c1] == [1, 3]
    assert sorted({r["event_timestamp"].day for r in table.to_pylist()}) == [4, 15]


def test_product_statistics_windows_decay_buyers_first_sale_and_price_level(con):
    rows = rows_by(feature_table(con, "product_features", AS_OF), "product_id")
    assert set(rows) == {"p1", "p2", "p3"}, "only products sold before as_of get a row (p9 is sold later)"
    p1, p2, p3 = (rows[p] for p in ("p1", "p2", "p3"))
    assert (p1["popularity_all"], p1["popularity_7d"], p1["popularity_30d"]) == (2.0, 0.0, 2.0)
    assert (p2["popularity_all"], p2["popularity_7d"]) == (2.0, 1.0)
    assert p1["popularity_decayed"] == pytest.approx(0.5 ** (14 / 30) + 0.5 ** (10 / 30))
    assert (p1["buyers"], p3["buyers"]) == (1.0, 2.0)
    assert p1["first_sale_ts"] == epoch(datetime(2001, 1, 1))
    assert p1["price"] == pytest.approx(np.exp((np.log(10.0) + np.log(12.0)) / 2))
    # price level: log price minus the mean over its subclass; p1 and p2 are alone in theirs
    assert p1["rel_price"] == pytest.approx(0.0) and p3["rel_price"] == pytest.approx(0.0)


def test_statistics_at_many_moments_equal_each_moment_alone(con):
    moments = [datetime(2001, 1, 2), datetime(2001, 1, 6), AS_OF, datetime(2001, 1, 21), datetime(2001, 2, 28)]
    together = {(r["product_id"], r["event_timestamp"]): r for r in feature_table(con, "product_features", moments).to_pylist()}
    for m in moments:
        for r in feature_table(con, "product_features", m).to_pylist():
            other = together[(r["product_id"], r["event_timestamp"])]
            assert {k: pytest.approx(v) if isinstance(v, float) else v for k, v in r.items()} == other


def test_requests_at_their_own_moments_see_only_their_own_past(con):
    from voicecart.features.sql import REQUESTS

    con.register(REQUESTS, pa.table({"customer_id": ["c1", "c1", "c2"],
                                     "as_of": pa.array([datetime(2001, 1, 5), datetime(2001, 1, 12),
                                                        datetime(2001, 1, 4)], pa.timestamp("us"))}))
    pairs = con.sql(render("customer_product")).to_arrow_table().to_pylist()
    got = {(r["customer_id"], r["event_timestamp"].day, r["product_id"]): r["purchase_count"] for r in pairs}
    assert got == {("c1", 5, "p1"): 1.0, ("c1", 5, "p2"): 1.0,
                   ("c1", 12, "p1"): 2.0, ("c1", 12, "p2"): 2.0, ("c1", 12, "p3"): 1.0,
                   ("c2", 4, "p3"): 1.0}
    stats = {(r["customer_id"], r["event_timestamp"].day): r["order_count"]
             for r in con.sql(render("customer_stats")).to_arrow_table().to_pylist()}
    assert stats == {("c1", 5): 1, ("c1", 12): 3, ("c2", 4): 1}


def test_customer_category_shares_sum_to_one_at_every_level(con):
    c1 = rows_by(feature_table(con, "customer_features", AS_OF), "customer_id")["c1"]
    assert c1["category_l1_ids"] == ["10", "20"]
    assert c1["category_l1_shares"] == pytest.approx([0.8, 0.2])
    for k in (1, 2, 3):
        assert sum(c1[f"category_l{k}_shares"]) == pytest.approx(1.0)
        assert len(c1[f"category_l{k}_ids"]) == len(c1[f"category_l{k}_shares"])
    assert c1["days_since_last_order"] == pytest.approx(4.0)


def test_customer_product_counts_orders_and_quantity(con):
    rows = {(r["customer_id"], r["product_id"]): r for r in feature_table(con, "customer_product", AS_OF).to_pylist()}
    assert rows[("c1", "p1")]["purchase_count"] == 2.0
    assert rows[("c1", "p1")]["quantity"] == 3.0
    assert ("c1", "p9") not in rows


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_query_transpiles_to_bigquery_and_parses_back(name):
    bigquery = to_bigquery(render(name), dataset="my-project.shop")
    tree = sqlglot.parse_one(bigquery, read="bigquery")
    tables = {t.sql(dialect="bigquery") for t in tree.find_all(sqlglot.exp.Table)}
    assert any("`my-project`.shop.orders" in t for t in tables), tables
    assert "date_diff('second'" not in bigquery.lower() and "TIME_TO_UNIX" not in bigquery


def test_transpiling_an_unportable_construct_is_an_error():
    with pytest.raises(sqlglot.errors.UnsupportedError):
        to_bigquery("SELECT ARRAY_AGG(x ORDER BY y ASC) FROM t")


def test_unknown_query_names_the_known_ones():
    with pytest.raises(KeyError, match="customer_profile"):
        render("nope")


def test_build_writes_tables_summary_and_an_empty_embedding_file(tmp_path):
    data = toy_dataset(tmp_path / "data")
    out = tmp_path / "offline"
    seen = []
    summary = build_features(data, out, progress=lambda t, n: seen.append(t))
    assert summary.as_of == [datetime(2001, 1, 21)]
    assert summary.rows == {"customer_profile": 2, "customer_features": 2, "product_features": 4}  # p9 sold by then
    assert seen == list(summary.rows)
    assert json.loads((out / "features.json").read_text())["rows"] == summary.rows
    assert pq.read_table(out / "customer_profile.parquet").num_rows == 2
    assert pq.read_table(out / EMBEDDINGS_FILE).num_rows == 0
    # re-running replaces the files and leaves no temporaries
    build_features(data, out, as_of=datetime(2001, 1, 4), snapshot_every_days=1)
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".")], names
    stamps = pq.read_table(out / "customer_profile.parquet").column("event_timestamp").to_pylist()
    assert sorted({t.day for t in stamps}) == [2, 3, 4]


def test_build_refuses_a_dataset_without_orders(tmp_path):
    data = toy_dataset(tmp_path / "data", orders=[])
    with pytest.raises(FeatureStoreError, match="no orders"):
        build_features(data, tmp_path / "out")


def test_embeddings_are_written_as_float32_lists_and_checked_for_shape(tmp_path):
    path = write_embeddings(tmp_path, ["c1", "c2"], np.arange(6).reshape(2, 3), datetime(2001, 1, 21))
    table = pq.read_table(path)
    assert table.schema.field("embedding").type == pa.list_(pa.float32())
    assert table.column("embedding").to_pylist()[1] == [3.0, 4.0, 5.0]
    with pytest.raises(FeatureStoreError, match=r"\(2, dim\)"):
        write_embeddings(tmp_path, ["c1", "c2"], np.zeros((3, 4)), datetime(2001, 1, 21))
