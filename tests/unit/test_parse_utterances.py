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


def test_table_has_at_least_60_cases_including_rejects():
    assert len(TABLE) >= 60
    assert sum(1 for row in TABLE if row[1] is U) >= 10


@pytest.mark.parametrize(("utterance", "intent", "quantity", "unit", "mention"), TABLE,
                         ids=[f"{i:02d}-{row[0][:30]}" for i, row in enumerate(TABLE)])
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
