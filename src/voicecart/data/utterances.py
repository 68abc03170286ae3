"""Voice requests built from the catalogue's own words, as a shopper says them, with ASR-style noise.

A retailer's category names are written for buyers ("SFT DRNK 2 LITER BTL CARB INCL",
"BREAD:ITALIAN/FRENCH"); a shopper says "add two bottles of soft drink" or "I need french bread".
:func:`readable_name` turns the catalogue words into plain lower-case words (the Complete Journey
adapter uses it for product titles); :func:`spoken_phrases` cuts them into what a person would say
for a product (its type, a shorter form, or its category); :func:`generate_utterances` wraps a
phrase in a request with a quantity and a unit when it has one and adds ASR noise (dropped words,
homophones, fillers). Everything is deterministic by seed: utterance ``i`` draws from its own
generator ``(seed, i)``, so a sample of lines gets the same text whatever else is generated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

# Buyer abbreviations in category names → words (Complete Journey's product types are cut at 30 chars).
ABBREVIATIONS = {
    "frzn": "frozen", "frz": "frozen", "fz": "frozen", "fd": "food", "snks": "snacks", "ckys": "cookies",
    "crkr": "crackers", "cndy": "candy", "drnk": "drink", "drnks": "drinks", "sft": "soft", "btl": "bottle",
    "carb": "carbonated", "flvrd": "flavored", "refrgratd": "refrigerated", "jce": "juice", "bev": "beverage",
    "bkd": "baked", "brd": "bread", "brkfst": "breakfast", "pkgd": "packaged", "pckgd": "packaged",
    "sply": "supplies", "supp": "supplies", "suppplies": "supplies", "gds": "goods", "chix": "chicken",
    "wtr": "water", "trsh": "trash", "bg": "bag", "mxs": "mixes", "veg": "vegetable", "ss": "single serve",
    "rts": "ready to serve", "iws": "individually wrapped", "hbc": "health and beauty", "hygn": "hygiene",
    "fem": "feminine", "sal": "salad", "sald": "salad", "drsng": "dressing", "sndwch": "sandwich",
    "sprd": "spread", "cleang": "cleaning", "whlsm": "wholesome", "pk": "pack", "pks": "packs",
    "asst": "assorted", "choc": "chocolate", "crm": "cream", "mlk": "milk", "chs": "cheese",
    "ckn": "chicken", "bf": "beef", "pork": "pork", "tky": "turkey", "vit": "vitamin", "cond": "condensed",
    "ctn": "carton", "lg": "large", "sm": "small", "med": "medium", "xl": "extra large",
    "oz": "ounce", "lb": "pound", "gal": "gallon", "ltr": "liter", "dz": "dozen", "bx": "box",
    "sngl": "single", "srv": "serve", "wt": "weight", "dsh": "dishes", "sherbts": "sherbets", "br": "bread",
    "reg": "regular", "beeralemalt": "beer", "pnt": "peanut", "btr": "butter", "mxd": "mixed", "grnd": "ground", "svc": "service",
}

# Words of category names that no shopper says.
JARGON = {
    "all", "only", "not", "non", "misc", "miscellaneous", "other", "others", "products", "product", "items",
    "item", "mainstream", "standard", "including", "incl", "inclu", "excl", "ex", "etc", "w", "n", "t", "s",
    "sv", "rw", "under", "over", "up", "to", "and", "or", "of", "the", "a", "in", "on", "for", "with",
    "continuity", "promo", "retail", "trans", "restricted", "value", "added", "basic", "multi", "single",
    "serve", "individually", "wrapped", "ready", "packs", "pack", "package", "can", "cans", "car", "bottle",
    "btls", "bulk", "bag", "bags", "tray", "sizes", "size", "count", "ct", "liter", "ounce", "pound",
    "fluid", "by", "regular", "weight", "exact", "mainstream", "pourable", "x",
}

# Words an ASR system confuses with another real word (both directions where it makes sense).
HOMOPHONES = {
    "two": ("to", "too"), "four": ("for",), "eight": ("ate",), "one": ("won",), "flour": ("flower",),
    "flower": ("flour",), "flowers": ("flours",), "meat": ("meet",), "cereal": ("serial",), "pear": ("pair",),
    "pears": ("pairs",), "thyme": ("time",), "leek": ("leak",), "leeks": ("leaks",), "roll": ("role",),
    "rolls": ("roles",), "berry": ("bury",), "berries": ("buries",), "bread": ("bred",), "chili": ("chilly",),
    "chilli": ("chilly",), "carrots": ("carats",), "mussels": ("muscles",), "plum": ("plumb",),
    "beets": ("beats",), "peas": ("peace",), "whole": ("hole",), "dough": ("doe",), "sole": ("soul",),
    "steak": ("stake",), "steaks": ("stakes",), "wine": ("whine",), "mints": ("mince",), "nuts": ("knots",),
    "beer": ("bear",), "beers": ("bears",), "buns": ("bunds",), "mayo": ("mayor",), "salmon": ("sammon",),
    "cheese": ("cheeks",), "chips": ("ships",), "soup": ("soap",), "rice": ("rise",), "eggs": ("legs",),
    "sauce": ("source",), "buy": ("by", "bye"), "need": ("knead",), "add": ("ad",), "some": ("sum",),
    "tea": ("tee",), "wheat": ("wheet",), "milk": ("mild",), "juice": ("deuce",), "pop": ("pup",),
    "cookies": ("cookie's",), "seeds": ("cedes",), "dates": ("dates",), "grapes": ("drapes",),
}

FILLERS = ("um", "uh", "uhm", "like", "you know", "okay", "please", "so", "oh", "hmm")

# Containers a shopper names for a kind of product, keyed by a word of its type or category.
CONTAINERS = {
    "soup": "can", "beans": "can", "tuna": "can", "vegetables": "can", "tomatoes": "can", "canned": "can",
    "soft": "bottle", "water": "bottle", "juice": "bottle", "juices": "bottle", "wine": "bottle",
    "wines": "bottle", "ketchup": "bottle", "dressing": "bottle", "dressings": "bottle", "oil": "bottle",
    "beer": "pack", "beers": "pack", "beeralemalt": "pack", "yogurt": "cup", "bread": "loaf",
    "chips": "bag", "snacks": "bag", "potatoes": "bag", "cereal": "box", "crackers": "box", "pasta": "box",
    "cookies": "box", "eggs": "dozen", "cheese": "bag", "tissue": "pack", "towels": "pack", "candy": "bag",
    "coffee": "bag", "ice": "bag", "sugar": "bag", "flour": "bag", "butter": "box", "jam": "jar",
    "peanut": "jar", "sauce": "jar", "pickles": "jar", "olives": "jar", "salsa": "jar", "cigarettes": "pack",
    "diapers": "pack", "ice cream": "tub", "margarine": "tub",
}

# Size units of a package (the last word of "16 OZ", "1 GA") a shopper would say as the unit.
SIZE_UNITS = {"ga": "gallon", "gal": "gallon", "lb": "pound", "lbs": "pound", "qt": "quart", "pt": "pint",
              "l": "liter", "ltr": "liter", "dz": "dozen", "pk": "pack", "ct": "pack", "ctn": "carton"}

PLURAL_UNITS = {"box": "boxes", "loaf": "loaves", "bunch": "bunches", "pack": "packs"}

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}

# Requests around a phrase ({q} is the quantity and unit, possibly empty).
TEMPLATES = (
    "add {q}{p}", "add {q}{p}", "add {q}{p} to my cart", "{q}{p}", "i need {q}{p}", "we need {q}{p}",
    "get me {q}{p}", "put {q}{p} in my cart", "can you add {q}{p}", "buy {q}{p}", "i want {q}{p}",
    "order {q}{p}", "add {q}{p} please", "we're out of {p}", "grab {q}{p}",
)

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_IRREGULAR = {"loaf": "loaves", "knife": "knives", "leaf": "leaves", "potato": "potatoes",
              "tomato": "tomatoes", "mango": "mangoes", "child": "children"}
_SINGULAR = {v: k for k, v in _IRREGULAR.items()}
_MASS = {"milk", "water", "juice", "rice", "cheese", "bread", "coffee", "tea", "sugar", "flour", "butter",
         "yogurt", "cereal", "soup", "ice", "candy", "pasta", "beef", "pork", "chicken", "turkey", "salad",
         "gasoline", "fish", "seafood", "meat", "produce", "salsa", "wine", "beer", "soda", "popcorn", "gum",
         "deli", "lettuce", "celery", "broccoli", "spinach", "ham", "bacon", "sausage", "dough", "oil",
         "sauce", "ketchup", "mustard", "mayo", "honey", "jam", "jelly", "syrup", "cream", "dressing",
         "detergent", "soap", "shampoo", "toothpaste", "foil", "tissue", "food", "garlic", "corn", "fruit",
         "unleaded", "gasoline"}


def readable_name(name: str | None) -> str | None:
    """Catalogue words in plain lower case: abbreviations spelled out, punctuation kept readable.

    ``"SFT DRNK 2 LITER BTL CARB INCL"`` → ``"soft drink 2 liter bottle carbonated incl"``;
    ``"BREAD:ITALIAN/FRENCH"`` → ``"bread: italian/french"``. ``None`` or blank stays ``None``."""
    if name is None or not str(name).strip():
        return None
    text = str(name).lower().replace("&", " and ")
    text = re.sub(r"\s*:\s*", ": ", text)
    text = re.sub(r"\s*/\s*", "/", text)
    words = re.split(r"(\W+)", text)
    return " ".join("".join(ABBREVIATIONS.get(w, w) for w in words).split()).strip(" :-/") or None


def _clean_words(text: str) -> list[str]:
    """The words of one alternative a shopper would say: no parentheses, numbers or jargon."""
    text = re.sub(r"\([^)]*\)?", " ", text)
    words = [ABBREVIATIONS.get(w, w) for w in _TOKEN.findall(text)]
    words = " ".join(words).split()
    return [w for w in words if w not in JARGON and not any(ch.isdigit() for ch in w) and len(w) > 1]


def _alternatives(text: str) -> list[str]:
    """Split "tortilla/nacho chips" into "tortilla chips" and "nacho chips", "ice cream/milk" into "ice cream"
    and "ice milk", and "bread: italian/french" (or "eggs - large") into "italian bread" and "french bread"."""
    text = text.replace(" - ", ": ")  # "eggs - large" reads like "eggs: large"
    if ":" in text:
        head, _, rest = text.partition(":")
        head_words = " ".join(_clean_words(head))
        return [f"{alt} {head_words}".strip() for alt in _alternatives(rest)] if head_words else _alternatives(rest)
    parts = [p.strip() for p in re.split(r"/|,| - ", text) if p.strip()]
    if len(parts) <= 1:
        return [" ".join(_clean_words(text))]
    words = [p.split() for p in parts]
    out = []
    if len(words[-1]) > 1 and all(len(w) == 1 for w in words[:-1]):  # shared head noun at the end
        head = " ".join(words[-1][1:])
        out = [f"{w[0]} {head}" for w in words[:-1]] + [" ".join(words[-1])]
    elif len(words[0]) > 1 and all(len(w) == 1 for w in words[1:]):  # shared modifiers at the start
        prefix = " ".join(words[0][:-1])
        out = [" ".join(words[0])] + [f"{prefix} {w[0]}" for w in words[1:]]
    else:
        out = parts
    return [" ".join(_clean_words(o)) for o in out]


_UNIT_WORDS = {w for u in (*CONTAINERS.values(), *SIZE_UNITS.values(), "cup", "roll", "pint", "box", "piece", "stick")
               for w in (u, u + "s", u + "es")} | {"loaves"}
"""A phrase made only of these would be heard as a quantity ("add a roll"), not a product."""

NAME_LIMIT = 30
"""Complete Journey cuts category names at 30 characters ("ALL TYPES INCLUDI")."""


def _uncut(name: str | None) -> str | None:
    """A name without the word its length limit may have cut."""
    if name is None or len(name) < NAME_LIMIT or " " not in name.strip():
        return name
    return name.strip().rsplit(" ", 1)[0]


def spoken_phrases(type_name: str | None, category_name: str | None = None) -> dict[str, list[str]]:
    """What a shopper may say for a product of this type and category, by kind of phrase:
    ``type`` (the product type's words, the way a person orders them), ``short`` (the words it shares
    with its category, else its last word) and ``category``. Empty lists where there are no usable words."""
    cats = list(dict.fromkeys(p for p in _alternatives(readable_name(_uncut(category_name)) or "") if p))
    cat_words = {_singular(w) for c in cats for w in c.split()}
    types, short = [], []
    for t in (p for p in _alternatives(readable_name(_uncut(type_name)) or "") if p):
        words = t.split()
        if len(words) == 1 and cats and _singular(words[0]) not in cat_words and not words[0].endswith("s") \
                and words[0] not in _MASS:
            words = [words[0], *cats[0].split()]  # "premium" of "ice cream" → "premium ice cream"
        if len(words) >= 2 and _singular(words[-2]) in cat_words and _singular(words[-1]) not in cat_words \
                and _singular(words[-1]) == words[-1]:
            words = [*words[:-2], words[-1], words[-2]]  # "grapes red" → "red grapes" (not "beer liquors")
        phrase = " ".join(words)
        types.append(phrase)
        shared = " ".join(w for w in words if _singular(w) in cat_words)
        for cand in (shared if shared else words[-1] if len(words) > 1 else "",):
            if cand and cand != phrase and cand not in short:
                short.append(cand)
    def product_words(phrases: list[str]) -> list[str]:
        return [p for p in dict.fromkeys(phrases) if not set(p.split()) <= _UNIT_WORDS]

    return {"type": product_words(types), "short": product_words(short), "category": product_words(cats)}


def _plural(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("s") or word in _MASS:
        return word
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("ch", "sh", "x", "z")):
        return word + "es"
    return word + "s"


def _singular(word: str) -> str:
    if word in _SINGULAR:
        return _SINGULAR[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def inflect(phrase: str, plural: bool) -> str:
    """The phrase with its last word singular or plural ("hamburger buns" ↔ "hamburger bun")."""
    words = phrase.split()
    if not words:
        return phrase
    words[-1] = _plural(_singular(words[-1])) if plural else _singular(words[-1])
    return " ".join(words)


@dataclass(frozen=True)
class UtteranceConfig:
    """How requests are phrased and how noisy the recogniser is (probabilities per utterance)."""

    seed: int = 0
    type_share: float = 0.6  # say the product type's words ...
    short_share: float = 0.25  # ... a shorter form of them ...
    # ... else the category's words
    quantity_share: float = 0.5  # say the line's quantity ("two cans of ...") when it is a small whole number
    unit_share: float = 0.6  # name a container or size unit when one is known
    drop_word: float = 0.15  # ASR drops one word
    homophone: float = 0.2  # ASR hears a homophone of one word that has one
    filler: float = 0.25  # a hesitation or politeness word lands somewhere
    max_quantity: int = 12


@dataclass(frozen=True)
class Utterance:
    """One generated request for one bought product: the text heard and how it was made."""

    product_id: str
    text: str  # what the recogniser returns (noise applied)
    clean: str  # what the shopper said
    phrase: str  # the product words used
    kind: str  # "type" | "short" | "category"
    quantity: float | None  # the quantity said (None: none said)
    unit: str | None
    noise: tuple[str, ...] = field(default_factory=tuple)  # "drop", "homophone", "filler" as applied


def _unit(words: list[str], size: str | None) -> str | None:
    """A container or size unit a shopper would name for this product, when one is known."""
    if size:
        last = size.strip().lower().split()[-1] if size.strip() else ""
        if last in SIZE_UNITS:
            return SIZE_UNITS[last]
    phrase = " ".join(words)
    for key, container in CONTAINERS.items():
        if " " in key and key in phrase:  # "ice cream" before "ice"
            return container
    for w in reversed(words):
        if w in CONTAINERS:
            return CONTAINERS[w]
    return None


def _quantity_words(n: int, unit: str | None, rng: np.random.Generator) -> str:
    """"two cans of ", "a gallon of ", "3 " or "a " — the words before the product."""
    if n == 1:
        number = str(rng.choice(["a", "one"]))
    elif n == 2 and rng.random() < 0.2:
        number = "a couple of" if unit is None else "a couple"
    else:
        number = NUMBER_WORDS[n] if rng.random() < 0.8 else str(n)
    if unit is None:
        return f"{number} "
    if unit == "dozen":
        return "a dozen " if n == 1 else f"{number} dozen "
    unit_words = unit if n == 1 else PLURAL_UNITS.get(unit, unit + "s")
    return f"{number} {unit_words} of "


def asr_noise(text: str, rng: np.random.Generator, config: UtteranceConfig) -> tuple[str, tuple[str, ...]]:
    """Recogniser errors on a clean request: one dropped word, one homophone, one filler, each with its
    probability. Returns the heard text and the kinds of noise applied."""
    words, applied = text.split(), []
    if len(words) > 1 and rng.random() < config.drop_word:
        del words[int(rng.integers(len(words)))]
        applied.append("drop")
    swappable = [i for i, w in enumerate(words) if w in HOMOPHONES]
    if swappable and rng.random() < config.homophone:
        i = swappable[int(rng.integers(len(swappable)))]
        words[i] = str(rng.choice(HOMOPHONES[words[i]]))
        applied.append("homophone")
    if rng.random() < config.filler:
        words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(FILLERS)))
        applied.append("filler")
    return " ".join(words), tuple(applied)


def say(product: Mapping[str, object], quantity: float, rng: np.random.Generator,
        config: UtteranceConfig = UtteranceConfig()) -> Utterance | None:
    """One request for a product (a canonical products row: ``category_l3_name``, ``category_l2_name``,
    ``size``, ``product_id``) bought in ``quantity``; ``None`` when its catalogue has no words to say."""
    phrases = spoken_phrases(product.get("category_l3_name"), product.get("category_l2_name"))
    if not phrases["type"] and product.get("title") and not phrases["category"]:
        phrases = spoken_phrases(str(product["title"]), None)
    draw = rng.random()
    order = ("type", "short", "category") if draw < config.type_share else \
        ("short", "type", "category") if draw < config.type_share + config.short_share else ("category", "type", "short")
    kind = next((k for k in order if phrases[k]), None)
    if kind is None:
        return None
    phrase = str(rng.choice(phrases[kind]))
    mass = phrase.split()[-1] in _MASS
    n = int(quantity) if quantity == int(quantity) else 0
    template = str(rng.choice(TEMPLATES))
    say_quantity = 1 <= n <= config.max_quantity and rng.random() < config.quantity_share and "{q}" in template
    unit = _unit(phrase.split(), product.get("size")) if say_quantity and rng.random() < config.unit_share else None
    if say_quantity and unit is None and mass:
        say_quantity = False  # "add milk", not "add two milk"
    if say_quantity and unit is None:
        words = inflect(phrase, plural=n > 1)  # "a hamburger bun", "three hamburger buns"
    elif say_quantity or mass:
        words = phrase  # "two bags of potato chips", "milk"
    else:
        words = inflect(phrase, plural=bool(rng.random() < 0.7))  # "hamburger buns" or "hamburger bun"
    q = _quantity_words(n, unit, rng) if say_quantity else ""
    clean = " ".join(template.format(q=q, p=words).split())
    text, noise = asr_noise(clean, rng, config)
    return Utterance(str(product["product_id"]), text, clean, phrase, kind, float(n) if say_quantity else None,
                     unit if say_quantity else None, noise)


def generate_utterances(products: Mapping[str, Mapping[str, object]], lines: Iterable[tuple[str, float]],
                        config: UtteranceConfig = UtteranceConfig()) -> list[Utterance | None]:
    """One request per bought line ``(product_id, quantity)``, aligned with ``lines`` (``None`` where the
    product has no words). ``products`` maps a product id to its canonical row."""
    out = []
    for i, (product_id, quantity) in enumerate(lines):
        rng = np.random.default_rng([config.seed, i])
        out.append(say(products[str(product_id)], float(quantity), rng, config))
    return out
