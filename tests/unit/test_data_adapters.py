"""Adapters on small files the tests write themselves, including every bad input the issue lists."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from voicecart.data import DataError, load_dataset, read_manifest
from voicecart.data.prepare import describe, prepare

TAFENG_HEADER = '"TRANSACTION_DT","CUSTOMER_ID","AGE_GROUP","PIN_CODE","PRODUCT_SUBCLASS","PRODUCT_ID","AMOUNT","ASSET","SALES_PRICE"'
TAFENG_ROWS = [
    '"11/1/2000","0001","35-39","115","110411","A","2","24","30"',
    '"11/1/2000","0001","35-39","115","120107","B","1","48","46"',
    '"11/3/2000","0002","<25","221","110411","A","1","12","15"',
    '"12/24/2000","0001","35-39","115","110411","A","3","36","45"',
]


def _tafeng_zip(tmp_path: Path, rows: list[str], header: str = TAFENG_HEADER) -> Path:
    path = tmp_path / "ta_feng.csv.zip"
    body = "\ufeff" + "\r\n".join([header, *rows]) + "\r\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ta_feng_all_months_merged.csv", body.encode("utf-8"))
    return path


def test_tafeng_customer_day_is_one_order_and_subclass_becomes_three_levels(tmp_path):
    out = tmp_path / "out"
    manifest = prepare("tafeng", out, path=_tafeng_zip(tmp_path, TAFENG_ROWS))
    tables = load_dataset(out)
    assert manifest.tables["orders"].rows == 3  # (0001, 11/1), (0002, 11/3), (0001, 12/24)
    assert manifest.tables["order_lines"].rows == 4
    row = next(p for p in tables.products.to_pylist() if p["product_id"] == "A")
    assert (row["category_l1"], row["category_l2"], row["category_l3"]) == ("11", "1104", "110411")
    lines = {(r["order_id"], r["product_id"]): r for r in tables.order_lines.to_pylist()}
    assert lines[("0001-20001101", "A")]["quantity"] == 2
    assert lines[("0001-20001101", "A")]["price"] == pytest.approx(15.0)  # 30 for 2 units
    customers = {r["customer_id"]: r for r in tables.customers.to_pylist()}
    assert customers["0002"]["age_group"] == "<25" and customers["0002"]["postal_area"] == "221"


def test_tafeng_folder_stands_for_the_one_file_in_it(tmp_path):
    folder = tmp_path / "tafeng"
    folder.mkdir()
    _tafeng_zip(folder, TAFENG_ROWS)
    manifest = prepare("tafeng", tmp_path / "out", path=folder)
    assert manifest.tables["orders"].rows == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="is a folder: pass the Ta-Feng file itself"):
        prepare("tafeng", tmp_path / "out2", path=empty)


def test_manifest_records_counts_checksums_and_schema_version(tmp_path):
    out = tmp_path / "out"
    prepare("tafeng", out, path=_tafeng_zip(tmp_path, TAFENG_ROWS))
    manifest = read_manifest(out)
    assert manifest.schema_version == "1.1" and manifest.source == "tafeng"
    assert manifest.stats["source_lines"] == 4
    for name, entry in manifest.tables.items():
        assert pq.read_metadata(out / entry.file).num_rows == entry.rows, name
        assert len(entry.sha256) == 64


@pytest.mark.parametrize(
    ("rows", "header", "column", "row"),
    [
        (['"13/45/2000","0001","35-39","115","110411","A","2","24","30"'], TAFENG_HEADER, "TRANSACTION_DT", 2),
        (TAFENG_ROWS[:1] + ['"11/1/2000","0001","35-39","115","110411","A","-2","24","30"'], TAFENG_HEADER, "AMOUNT", 3),
        (['"11/1/2000","0001","35-39","115","11041","A","2","24","30"'], TAFENG_HEADER, "PRODUCT_SUBCLASS", 2),
        (["\"11/1/2000\",\"0001\",\"35-39\",\"115\",\"110411\",\"A\",\"2\",\"24\""],
         TAFENG_HEADER.replace(',"SALES_PRICE"', ""), "SALES_PRICE", None),
    ],
    ids=["unparseable-date", "negative-quantity", "bad-subclass", "missing-column"],
)
def test_tafeng_bad_input_names_file_row_and_column(tmp_path, rows, header, column, row):
    src = _tafeng_zip(tmp_path, rows, header)
    out = tmp_path / "out"
    with pytest.raises(DataError) as err:
        prepare("tafeng", out, path=src)
    message = str(err.value)
    assert str(src) in message and repr(column) in message
    if row is not None:
        assert f"row {row}" in message
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "temporary folder left behind"


def test_truncated_zip_is_a_clear_error(tmp_path):
    good = _tafeng_zip(tmp_path, TAFENG_ROWS * 200)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        prepare("tafeng", tmp_path / "out", path=cut)
    assert str(cut) in str(err.value)


def test_failed_rerun_keeps_the_previous_good_output(tmp_path):
    out = tmp_path / "out"
    prepare("tafeng", out, path=_tafeng_zip(tmp_path, TAFENG_ROWS))
    before = read_manifest(out)
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(DataError):
        prepare("tafeng", out, path=_tafeng_zip(bad, ['"x","0001","35-39","115","110411","A","2","24","30"']))
    assert read_manifest(out) == before
    prepare("tafeng", out, path=_tafeng_zip(tmp_path, TAFENG_ROWS))  # re-running is safe
    assert read_manifest(out).tables == before.tables


def _instacart_folder(tmp_path: Path, extra_line: str = "") -> Path:
    folder = tmp_path / "instacart"
    folder.mkdir()
    (folder / "products.csv").write_text("product_id,product_name,aisle_id,department_id\n"
                                         "1,Organic Whole Milk,84,16\n2,Sourdough Bread,112,3\n")
    (folder / "aisles.csv").write_text('"aisle_id","aisle"\n84,"milk"\n112,"bread"\n')
    (folder / "departments.csv").write_text('"department_id","department"\n16,"dairy eggs"\n3,"bakery"\n')
    (folder / "order_lines_sample.csv").write_text(
        ",order_id,user_id,order_number,order_dow,order_hour_of_day,days_since_prior_order,product_id,add_to_cart_order,reordered\n"
        "0,10,7,1,2,8,,1,1.0,0.0\n1,10,7,1,2,8,,2,2.0,0.0\n2,11,7,2,3,9,5.0,1,1.0,1.0\n3,12,7,3,1,10,30.0,1,1.0,1.0\n"
        + extra_line)
    return folder


def test_instacart_sample_dates_orders_from_days_since_prior(tmp_path):
    out = tmp_path / "out"
    prepare("instacart", out, path=_instacart_folder(tmp_path))
    tables = load_dataset(out)
    orders = {r["order_id"]: r["timestamp"] for r in tables.orders.to_pylist()}
    assert (orders["11"] - orders["10"]).days == 5
    assert (orders["12"] - orders["11"]).days == 30
    assert orders["10"].hour == 8
    milk = [p for p in tables.products.to_pylist() if p["product_id"] == "1"][0]
    assert milk["title"] == "Organic Whole Milk"
    assert (milk["category_l1_name"], milk["category_l2_name"]) == ("dairy eggs", "milk")


def test_instacart_product_missing_from_catalogue(tmp_path):
    folder = _instacart_folder(tmp_path, "4,12,7,3,1,10,30.0,999,2.0,0.0\n")
    with pytest.raises(DataError, match="not in products.csv") as err:
        prepare("instacart", tmp_path / "out", path=folder)
    assert "row 6" in str(err.value) and "'product_id'" in str(err.value)


def test_instacart_missing_file(tmp_path):
    folder = _instacart_folder(tmp_path)
    (folder / "aisles.csv").unlink()
    with pytest.raises(DataError, match="missing aisles.csv"):
        prepare("instacart", tmp_path / "out", path=folder)


LINES = ("customer_id,timestamp,product_id,quantity,price,product_title,brand,size,category_l1,category_l2,category_l3\n"
         "c1,2024-03-01T10:00:00,p1,2,3.5,Whole milk 1 gal,Acme,1 gal,Dairy,Milk,Whole milk\n"
         "c1,2024-03-01T10:00:00,p2,1,2.0,Bread,Baker,500 g,Bakery,Bread,Sliced\n"
         "c2,2024-03-02T11:00:00,p1,1,3.5,,,,,,\n")


def test_lines_export_groups_orders_and_keeps_product_attributes(tmp_path):
    src = tmp_path / "lines.csv"
    src.write_text(LINES)
    out = tmp_path / "out"
    prepare("lines", out, path=src)
    tables = load_dataset(out)
    assert tables.orders.num_rows == 2
    p1 = [p for p in tables.products.to_pylist() if p["product_id"] == "p1"][0]
    assert (p1["brand"], p1["size"], p1["category_l1"], p1["category_l3"]) == ("Acme", "1 gal", "Dairy", "Whole milk")


def test_lines_export_reads_parquet_too(tmp_path):
    import pyarrow.csv as pacsv

    csv = tmp_path / "lines.csv"
    csv.write_text(LINES)
    pq.write_table(pacsv.read_csv(csv), tmp_path / "lines.parquet")
    prepare("lines", tmp_path / "out", path=tmp_path / "lines.parquet")
    assert read_manifest(tmp_path / "out").tables["order_lines"].rows == 3


@pytest.mark.parametrize(("bad", "column"), [("c1,yesterday,p1,1,1.0", "timestamp"), ("c1,2024-01-01,p1,-1,1.0", "quantity"),
                                             ("c1,2024-01-01,p1,1,-3", "price"), (",2024-01-01,p1,1,1.0", "customer_id")])
def test_lines_bad_values(tmp_path, bad, column):
    src = tmp_path / "lines.csv"
    src.write_text("customer_id,timestamp,product_id,quantity,price\nc1,2024-01-01,p1,1,1.0\n" + bad + "\n")
    with pytest.raises(DataError) as err:
        prepare("lines", tmp_path / "out", path=src)
    assert f"'{column}'" in str(err.value) and "row 3" in str(err.value)


def test_lines_missing_required_column(tmp_path):
    src = tmp_path / "lines.csv"
    src.write_text("customer_id,timestamp,product_id,quantity\nc1,2024-01-01,p1,1\n")
    with pytest.raises(DataError, match="missing required column\\(s\\) price"):
        prepare("lines", tmp_path / "out", path=src)


def test_describe_reports_depth_and_percentiles(tmp_path):
    src = tmp_path / "lines.csv"
    src.write_text(LINES)
    prepare("lines", tmp_path / "out", path=src)
    summary = describe(tmp_path / "out")
    assert summary["rows"]["customers"] == 2
    # p1 has one uncategorized line but its categorized path wins: Dairy and Bakery only
    assert summary["categories_per_level"] == [2, 2, 2]
    assert summary["orders_per_customer_percentiles"]["p50"] == 1.0


def test_unknown_source_and_missing_path():
    with pytest.raises(DataError, match="unknown source"):
        prepare("walmart", Path("/tmp/never"))
    with pytest.raises(DataError, match="--path is required"):
        prepare("lines", Path("/tmp/never"))


def test_instacart_kaggle_layout_reads_prior_and_train_lines(tmp_path):
    folder = _instacart_folder(tmp_path)
    (folder / "order_lines_sample.csv").unlink()
    (folder / "orders.csv").write_text(
        "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order\n"
        "10,7,prior,1,2,8,\n11,7,prior,2,3,9,5.0\n12,7,train,3,1,10,30.0\n20,8,prior,1,0,12,\n")
    (folder / "order_products__prior.csv").write_text(
        "order_id,product_id,add_to_cart_order,reordered\n10,1,1,0\n10,2,2,0\n11,1,1,1\n20,2,1,0\n")
    (folder / "order_products__train.csv").write_text("order_id,product_id,add_to_cart_order,reordered\n12,1,1,1\n")
    out = tmp_path / "out"
    manifest = prepare("instacart", out, path=folder)
    assert manifest.stats["source_lines"] == 5
    assert manifest.tables["orders"].rows == 4 and manifest.tables["customers"].rows == 2
    orders = {r["order_id"]: r["timestamp"] for r in load_dataset(out).orders.to_pylist()}
    assert (orders["12"] - orders["10"]).days == 35
