"""Utterances made of the catalogue's words: phrasing, quantities and units, ASR noise, determinism, and
what the real parser and retrieval make of them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest

from voicecart.data.utterances import (FILLERS, HOMOPHONES, UtteranceConfig, asr_noise, generate_utterances,
                                       inflect, readable_name, say, spoken_phrases)
from voicecart.ranking.parse import parse
from voicecart.schemas import Intent

QUIET = UtteranceConfig(drop_word=0.0, homophone=0.0, filler=0.0)
PRODUCTS = {
    "buns": {"product_id": "buns", "category_l3_name": "HAMBURGER BUNS", "category_l2_name": "BAKED BREAD/BUNS/ROLLS",
             "size": "12 OZ"},
    "soup": {"product_id": "soup", "category_l3_name": "CONDENSED SOUP", "category_l2_name": "SOUP",
             "size": "10.75 OZ"},
    "milk": {"product_id": "milk", "category_l3_name": "FLUID MILK WHITE ONLY", "category_l2_name": "FLUID MILK PRODUCTS",
             "size": "1 GA"},
    "chips": {"product_id": "chips", "category_l3_name": "TORTILLA/NACHO CHIPS", "category_l2_name": "BAG SNACKS",
              "size": "13 OZ"},
    "eggs": {"product_id": "eggs", "category_l3_name": "EGGS - LARGE", "category_l2_name": "EGGS", "size": "1 DZ"},
    "none": {"product_id": "none", "category_l3_name": None, "category_l2_name": None, "size": None},
}


@pytest.mark.parametrize(("raw", "readable"), [
    ("SFT DRNK 2 LITER BTL CARB INCL", "soft drink 2 liter bottle carbonated incl"),
    ("BREAD:ITALIAN/FRENCH", "bread: italian/french"),
    ("ASEPTIC MILK & MILK DRINKS", "aseptic milk and milk drinks"),
    ("  ", None), (None, None),
])
def test_catalogue_words_become_plain_lower_case(raw, readable):
    assert readable_name(raw) == readable


@pytest.mark.parametrize(("type_name", "category", "said"), [
    ("HAMBURGER BUNS", "BAKED BREAD/BUNS/ROLLS", {"type": ["hamburger buns"], "short": ["buns"]}),
    ("BREAD:ITALIAN/FRENCH", "BREAD", {"type": ["italian bread", "french bread"]}),
    ("TORTILLA/NACHO CHIPS", "BAG SNACKS", {"type": ["tortilla chips", "nacho chips"], "short": ["chips"]}),
    ("GRAPES RED", "GRAPES", {"type": ["red grapes"], "short": ["grapes"], "category": ["grapes"]}),
    ("PREMIUM", "ICE CREAM/MILK/SHERBTS", {"type": ["premium ice cream"],
                                          "category": ["ice cream", "ice milk", "ice sherbets"]}),
    ("FLUID MILK WHITE ONLY", "FLUID MILK PRODUCTS", {"type": ["white milk"], "short": ["milk"], "category": ["milk"]}),
    ("EGGS - LARGE", "EGGS", {"type": ["large eggs"]}),
    ("MAINSTREAM", "PASTA SAUCE", {"type": [], "category": ["pasta sauce"]}),
])
def test_a_shopper_says_the_type_a_shorter_form_or_the_category(type_name, category, said):
    phrases = spoken_phrases(type_name, category)
    for kind, expected in said.items():
        assert phrases[kind] == expected, kind


def test_singular_and_plural_of_the_last_word():
    assert inflect("hamburger buns", plural=False) == "hamburger bun"
    assert inflect("hamburger bun", plural=True) == "hamburger buns"
    assert inflect("white loaf", plural=True) == "white loaves"
    assert inflect("raspberry", plural=True) == "raspberries"


def test_quantities_and_units_are_said_as_a_shopper_says_them():
    always = replace(QUIET, quantity_share=1.0, unit_share=1.0, type_share=1.0)

    def said(product: str, quantity: int, config: UtteranceConfig) -> list:
        out = [say(PRODUCTS[product], quantity, np.random.default_rng(i), config) for i in range(40)]
        assert all(u.clean.startswith("we're out of") for u in out if u.quantity is None and u.unit is None
                   and config.quantity_share == 1.0 and product != "milk")  # the one request without a quantity
        return [u for u in out if u.quantity is not None]

    soup = said("soup", 2, always)
    assert len(soup) > 30 and all(u.unit == "can" and ("two cans of condensed soup" in u.clean or
                                                       "2 cans of" in u.clean or "couple cans" in u.clean) for u in soup)
    assert all("gallon of" in u.clean for u in said("milk", 1, always))  # 1 GA
    no_unit = replace(always, unit_share=0.0)
    assert said("milk", 3, no_unit) == []  # mass noun: "add white milk", never "add three white milk"
    buns = said("buns", 3, no_unit)
    assert len(buns) > 30 and all("three hamburger buns" in u.clean or "3 hamburger buns" in u.clean for u in buns)
    one = said("buns", 1, no_unit)
    assert len(one) > 30 and all(("a hamburger bun" in u.clean or "one hamburger bun" in u.clean)
                                 and "buns" not in u.clean for u in one)
    assert say(PRODUCTS["none"], 1, np.random.default_rng(0)) is None


def test_generation_is_deterministic_by_seed_and_each_line_draws_its_own():
    lines = [("buns", 2), ("soup", 1), ("milk", 1), ("chips", 4), ("eggs", 1)] * 20
    a = generate_utterances(PRODUCTS, lines, UtteranceConfig(seed=3))
    assert a == generate_utterances(PRODUCTS, lines, UtteranceConfig(seed=3))
    assert [u.text for u in a] != [u.text for u in generate_utterances(PRODUCTS, lines, UtteranceConfig(seed=4))]
    changed = generate_utterances(PRODUCTS, [("soup", 3), *lines[1:]], UtteranceConfig(seed=3))
    assert changed[1:] == a[1:]
    assert {u.kind for u in a} == {"type", "short", "category"}


def test_asr_noise_drops_a_word_swaps_a_homophone_and_adds_a_filler():
    text = "add two cans of condensed soup"
    rng = np.random.default_rng(0)
    heard, kinds = asr_noise(text, rng, replace(QUIET, drop_word=1.0))
    assert kinds == ("drop",) and len(heard.split()) == 5 and set(heard.split()) < set(text.split())
    heard, kinds = asr_noise(text, rng, replace(QUIET, homophone=1.0))
    changed = [(a, b) for a, b in zip(text.split(), heard.split()) if a != b]
    assert kinds == ("homophone",) and len(changed) == 1 and changed[0][1] in HOMOPHONES[changed[0][0]]
    heard, kinds = asr_noise(text, rng, replace(QUIET, filler=1.0))
    extra = list(heard.split())
    for w in text.split():
        extra.remove(w)
    assert kinds == ("filler",) and " ".join(extra) in FILLERS
    assert asr_noise(text, rng, QUIET) == (text, ())


def test_clean_requests_parse_to_the_phrase_and_quantity_said():
    lines = [(p, q) for p in ("buns", "soup", "milk", "chips", "eggs") for q in (1, 2, 3)] * 10
    for u in generate_utterances(PRODUCTS, lines, QUIET):
        parsed = parse(u.clean)
        assert parsed.intent is Intent.add, u.clean
        assert parsed.mention and set(inflect(u.phrase, True).split()) <= set(inflect(parsed.mention, True).split()), u.clean
        if u.quantity is not None:
            assert parsed.quantity == u.quantity * (12 if u.unit == "dozen" else 1), u.clean


def test_retrieval_recall_finds_the_bought_product_on_a_prepared_slice(tmp_path):
    from tests.unit.test_data_completejourney import _folder
    from voicecart.data.prepare import prepare
    from voicecart.evaluation.retrieval import retrieval_recall

    prepare("completejourney", tmp_path / "out", path=_folder(tmp_path))
    report = retrieval_recall(tmp_path / "out", datetime(2017, 3, 2), lines=100, ks=(1, 10), config=QUIET,
                              n_boot=20)
    said = report["said"]
    # three lines after the cut: buns and the soft drink (sold before) and product 104 (no words: not said)
    assert report["lines"] == 3 and report["without_words"] == 1 and report["never_sold_before"] == 2
    assert said["parsed"]["value"] == 1.0
    assert said["type"]["recall@10"]["value"] == 1.0
    # the soft drink was first sold after the catalogue's cut; with no sold product matching, retrieval keeps it
    assert said["product"]["recall@10"]["value"] == 1.0 and said["sold_before_only"]["recall@10"]["value"] == 1.0
