"""The confirmation speaks the product as a shopper names it and says when it is their usual one."""

import pyarrow as pa

from voicecart.ranking import Catalog, parse
from voicecart.schemas import CustomerProfile
from voicecart.ranking.parse import amount, confirmation, spoken_name, times_bought

CATALOG = Catalog.from_table(pa.table({
    "product_id": ["1", "2", "3", "4"],
    "title": ["hamburger buns", "olive oil", "blue hill milk 1 l", None],
    "brand": ["National", "Private", "blue hill", None],
    "size": ["15 OZ", "16  OZ", "1 L", None],
    "category_l1": ["a"] * 4, "category_l2": ["a > b"] * 4, "category_l3": ["x", "y", "z", "z"]}))
PROFILE = CustomerProfile(customer_id="h1", order_count=9, product_ids=["1", "2"], product_counts=[5.0, 1.0],
                          product_last_ts=[0.0, 0.0])


def said(utterance: str, index: int, profile: CustomerProfile | None = PROFILE) -> str:
    product_id = str(CATALOG.product_ids[index])
    return confirmation(parse(utterance), spoken_name(CATALOG, index), times_bought(profile, product_id))


def test_the_issue_sentence():
    assert said("add two hamburger buns", 0) == "Added two 15 OZ National hamburger buns, the ones you usually buy."


def test_store_brand_once_bought_and_never_bought():
    assert said("add olive oil", 1) == "Added 16 OZ store brand olive oil, the ones you bought before."
    assert said("add olive oil", 1, None) == "Added 16 OZ store brand olive oil to your cart."


def test_a_title_holding_its_brand_and_size_does_not_repeat_them():
    assert spoken_name(CATALOG, 2) == "blue hill milk 1 l"


def test_a_catalogue_of_codes_names_the_product_by_id():
    assert said("add 3 of 500804", 3) == "Added three product 4 to your cart."


def test_units_remove_ask_and_not_found():
    assert amount(2, "can") == "two cans of" and amount(1, "can") == "one can of" and amount(1.5, None) == "1.5"
    assert said("remove the hamburger buns", 0).startswith("Removed 15 OZ National hamburger buns")
    assert confirmation(parse("add unicorn steaks"), None) == "Sorry, I couldn't find unicorn steaks."
