"""The utterance table: what the parser must understand, and what it must reject."""

import pytest

from voicecart.ranking import parse
from voicecart.schemas import Intent

A, R, O, Q, U = Intent.add, Intent.remove, Intent.reorder, Intent.ask, Intent.unknown

# (utterance, intent, quantity, unit, mention)
TABLE = [
    ("add two gallons of milk", A, 2, "gallon", "milk"),
    ("add milk", A, 1, None, "milk"),
    ("milk", A, 1, None, "milk"),
    ("milk please", A, 1, None, "milk"),
    ("uh please add a dozen eggs to my cart", A, 12, None, "eggs"),
    ("add two dozen eggs", A, 24, None, "eggs"),
    ("3 bottles of water", A, 3, "bottle", "water"),
    ("add 3 bananas", A, 3, None, "bananas"),
    ("add to gallons of milk", A, 2, "gallon", "milk"),
    ("add for bottles of water", A, 4, "bottle", "water"),
    ("add add organic whole milk", A, 1, None, "organic whole milk"),
    ("i need a couple of avocados", A, 2, None, "avocados"),
    ("get me half a gallon of orange juice", A, 0.5, "gallon", "orange juice"),
    ("add one and a half pounds of ground beef", A, 1.5, "pound", "ground beef"),
    ("twenty four cans of soda", A, 24, "can", "soda"),
    ("put five apples in my cart", A, 5, None, "apples"),
    ("could you add a loaf of bread", A, 1, "loaf", "bread"),
    ("hey add some coffee", A, 1, None, "coffee"),
    ("umm add uh peanut butter", A, 1, None, "peanut butter"),
    ("we're out of paper towels", A, 1, None, "paper towels"),
    ("we need toilet paper", A, 1, None, "toilet paper"),
    ("buy two packs of gum", A, 2, "pack", "gum"),
    ("order a box of cereal", A, 1, "box", "cereal"),
    ("grab a bag of chips", A, 1, "bag", "chips"),
    ("add 2.5 pounds of chicken", A, 2.5, "pound", "chicken"),
    ("add ten pounds of potatoes", A, 10, "pound", "potatoes"),
    ("add a few lemons", A, 3, None, "lemons"),
    ("add six cans of tuna please", A, 6, "can", "tuna"),
    ("ADD TWO GALLONS OF MILK", A, 2, "gallon", "milk"),
    ("Add two gallons of milk.", A, 2, "gallon", "milk"),
    ("add a jar of pasta sauce to the cart", A, 1, "jar", "pasta sauce"),
    ("add three liters of sparkling water", A, 3, "liter", "sparkling water"),
    ("add twelve ounces of cheddar cheese", A, 12, "ounce", "cheddar cheese"),
    ("add a carton of eggs", A, 1, "carton", "eggs"),
    ("add 100205", A, 1, None, "100205"),
    ("add two 100205", A, 2, None, "100205"),
    ("subclass 530110", A, 1, None, "530110"),
    ("i'd like to add some bananas", A, 1, None, "bananas"),
    ("throw in a bunch of cilantro", A, 1, "bunch", "cilantro"),
    ("pick up two heads of lettuce", A, 2, "head", "lettuce"),
    ("remove the bananas", R, 1, None, "bananas"),
    ("remove milk from my cart", R, 1, None, "milk"),
    ("take out the eggs", R, 1, None, "eggs"),
    ("delete two cans of soup", R, 2, "can", "soup"),
    ("get rid of the chips", R, 1, None, "chips"),
    ("i don't want the yogurt", R, 1, None, "yogurt"),
    ("buy again my usual coffee", O, 1, None, "coffee"),
    ("reorder paper towels", O, 1, None, "paper towels"),
    ("order again the dog food", O, 1, None, "dog food"),
    ("the usual milk", O, 1, None, "milk"),
    ("get my usual bread again", O, 1, None, "bread"),
    ("do i have milk in my cart", Q, 1, None, "milk"),
    ("how much is the salmon", Q, 1, None, "salmon"),
    ("is there coffee in my cart", Q, 1, None, "coffee"),
    ("what's in my cart", Q, 1, None, None),
    # rejects: not a shopping request
    ("what's the weather", U, 1, None, None),
    ("tell me a joke", U, 1, None, None),
    ("play some music", U, 1, None, None),
    ("set a timer for ten minutes", U, 1, None, None),
    ("call mom", U, 1, None, None),
    ("hello", U, 1, None, None),
    ("turn on the lights", U, 1, None, None),
    ("what time is it", U, 1, None, None),
    ("never mind", U, 1, None, None),
    ("yes", U, 1, None, None),
    ("", U, 1, None, None),
    ("   ", U, 1, None, None),
    ("uh um", U, 1, None, None),
    ("add", U, 1, None, None),
    ("please", U, 1, None, None),
    ("add a thousand and one gallons of milk " * 20, U, 1, None, None),
]

# The measured failures of issue 17: codes read as quantities, a filler left in the mention, a
# negative amount made positive, an utterance too long to read.
REGRESSIONS = [
    ("add one 500201", A, 1, None, "500201"),
    ("add 1 130206", A, 1, None, "130206"),
    ("add 130206 x2", A, 2, None, "130206"),
    ("add 2x 130206", A, 2, None, "130206"),
    ("add two 130206", A, 2, None, "130206"),
    ("put two apples in my basket", A, 2, None, "apples"),
    ("add -2 apples", U, 1, None, None),
    ("add milk " * 40, U, 1, None, None),
]

# A realistic mix: quantities as words and digits, multipliers, fillers at either end.
REALISTIC = [
    ("add 2 milk", A, 2, None, "milk"),
    ("add milk x2", A, 2, None, "milk"),
    ("add milk x 3", A, 3, None, "milk"),
    ("add 2 x milk", A, 2, None, "milk"),
    ("add 3x yogurt", A, 3, None, "yogurt"),
    ("add yogurt times two", A, 2, None, "yogurt"),
    ("add bread two times", A, 2, None, "bread"),
    ("add four bananas to my basket", A, 4, None, "bananas"),
    ("put eggs in the basket", A, 1, None, "eggs"),
    ("put 6 eggs into my basket", A, 6, None, "eggs"),
    ("add cheese to the list", A, 1, None, "cheese"),
    ("add two cans of beans to my shopping list", A, 2, "can", "beans"),
    ("put rice on the list", A, 1, None, "rice"),
    ("put rice on my shopping list", A, 1, None, "rice"),
    ("add coffee for me", A, 1, None, "coffee"),
    ("get me some tea for me please", A, 1, None, "tea"),
    ("add pasta for us", A, 1, None, "pasta"),
    ("add 12 eggs to my trolley", A, 12, None, "eggs"),
    ("add butter to my shopping basket", A, 1, None, "butter"),
    ("add one yogurt", A, 1, None, "yogurt"),
    ("add eleven apples", A, 11, None, "apples"),
    ("add thirty two ounces of yogurt", A, 32, "ounce", "yogurt"),
    ("add 1000 grams of flour", A, 1000, "gram", "flour"),
    ("add 500 g of butter", A, 500, "gram", "butter"),
    ("add 100201", A, 1, None, "100201"),
    ("add 3 100201", A, 3, None, "100201"),
    ("add three of 100201", A, 3, None, "100201"),
    ("please add 2 packs of 530110 to my cart", A, 2, "pack", "530110"),
    ("buy 2 bottles of 110411", A, 2, "bottle", "110411"),
    ("can you add a dozen eggs for me", A, 12, None, "eggs"),
    ("i need 2 loaves of bread for the week", A, 2, "loaf", "bread"),
    ("add some apples right now", A, 1, None, "apples"),
    ("okay add milk", A, 1, None, "milk"),
    ("milk x2", A, 2, None, "milk"),
    ("two milk", A, 2, None, "milk"),
    ("remove 2 milk from my cart", R, 2, None, "milk"),
    ("remove the yogurt from my basket", R, 1, None, "yogurt"),
    ("take the eggs off my list", R, 1, None, "eggs"),
    ("reorder my usual coffee x2", O, 2, None, "coffee"),
    ("add 0 apples", U, 1, None, None),
    ("add 5000 apples", U, 1, None, None),
    ("add two milk x3", U, 1, None, None),
    ("add \u2212 2 apples", U, 1, None, None),
    ("add to my basket", U, 1, None, None),
]


def test_table_has_at_least_60_cases_including_rejects():
    assert len(TABLE) >= 60
    assert sum(1 for row in TABLE if row[1] is U) >= 10


ALL = TABLE + REGRESSIONS + REALISTIC


def test_realistic_mix_has_at_least_40_cases():
    assert len(REALISTIC) >= 40 and len(REGRESSIONS) >= 8


@pytest.mark.parametrize(("utterance", "intent", "quantity", "unit", "mention"), ALL,
                         ids=[f"{i:03d}-{row[0][:30]}" for i, row in enumerate(ALL)])
def test_utterance(utterance, intent, quantity, unit, mention):
    parsed = parse(utterance)
    assert parsed.intent is intent
    if intent is not U:
        assert parsed.quantity == pytest.approx(quantity)
        assert parsed.unit == unit
        assert parsed.mention == mention


def test_category_code_is_recognised():
    assert parse("add 100205").category == "100205"
    assert parse("add milk").category is None


def test_attributes_are_extracted():
    assert parse("add organic whole milk").attributes == ["organic", "whole"]


@pytest.mark.parametrize("bad", [None, b"\xff\xfe\xfa", b"add \xffmilk", "x" * 5000, "\x00\x01", "🥛🥛", 42])
def test_bad_input_never_raises(bad):
    parsed = parse(bad)
    assert parsed.intent in set(Intent)


def test_non_utf8_bytes_are_decoded_leniently():
    assert parse(b"add \xff milk").mention == "milk"
    assert parse(b"\xff\xfe\xfa").intent is U


def test_five_thousand_characters_is_unknown():
    assert parse("add milk " * 600).intent is U


@pytest.mark.parametrize("utterance, reason", [
    ("add -2 apples", "negative_quantity"), ("add \u22122 apples", "negative_quantity"),
    ("add milk " * 40, "too_long"), ("add 0 apples", "quantity_out_of_range"),
    ("add 5000 apples", "quantity_out_of_range"), ("add two milk x3", "two_quantities"),
    ("what's the weather", "not_shopping"), ("add", "no_product"), ("", "empty"),
])
def test_every_unknown_says_why(utterance, reason):
    parsed = parse(utterance)
    assert parsed.intent is U and parsed.reason == reason


def test_the_request_schema_bounds_the_utterance_at_the_parsers_limit():
    from voicecart.ranking.parse import MAX_CHARS
    from voicecart.schemas.api import MAX_UTTERANCE

    assert MAX_UTTERANCE == MAX_CHARS
    assert parse("add milk " + "x" * (MAX_CHARS - 9)).intent is A  # at the bound it is still read
