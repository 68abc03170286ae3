"""Utterance parsing: intent, quantity, unit and the product mention from ASR text.

Rule-based on purpose: it runs on every request in microseconds, its behaviour is pinned by a
table of utterances in ``tests/unit/test_parse_utterances.py``, and it never raises — anything it
does not understand is ``Intent.unknown``.
"""

from __future__ import annotations

import re
import unicodedata

from voicecart.schemas import Intent, ParsedUtterance

MAX_CHARS = 300
"""Longer inputs are not one shopping request (a voice turn is a sentence or two). The request
schema (``ResolveRequest.utterance``) has the same bound, so the parser never sees a longer one."""

CODE_DIGITS = 4
"""A number of this many digits or more that ends the request is a product/category code
("add 1 130206"), not a quantity; followed by more words it is a quantity ("1000 grams of flour")."""

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "hundred": 100,
}
_FRACTIONS = {"half": 0.5, "quarter": 0.25}

UNITS = {
    "gallon": "gallon", "gallons": "gallon", "gal": "gallon",
    "liter": "liter", "liters": "liter", "litre": "liter", "litres": "liter", "l": "liter",
    "pound": "pound", "pounds": "pound", "lb": "pound", "lbs": "pound",
    "kilo": "kilogram", "kilos": "kilogram", "kilogram": "kilogram", "kilograms": "kilogram", "kg": "kilogram",
    "gram": "gram", "grams": "gram", "g": "gram",
    "ounce": "ounce", "ounces": "ounce", "oz": "ounce",
    "quart": "quart", "quarts": "quart", "pint": "pint", "pints": "pint",
    "pack": "pack", "packs": "pack", "package": "pack", "packages": "pack", "packet": "pack", "packets": "pack",
    "box": "box", "boxes": "box", "bottle": "bottle", "bottles": "bottle", "can": "can", "cans": "can",
    "bag": "bag", "bags": "bag", "jar": "jar", "jars": "jar", "carton": "carton", "cartons": "carton",
    "loaf": "loaf", "loaves": "loaf", "bunch": "bunch", "bunches": "bunch", "case": "case", "cases": "case",
    "roll": "roll", "rolls": "roll", "tub": "tub", "tubs": "tub", "container": "container",
    "containers": "container", "piece": "piece", "pieces": "piece", "dozen": "dozen", "dozens": "dozen",
    "six-pack": "six-pack", "sixpack": "six-pack", "head": "head", "heads": "head", "stick": "stick",
    "sticks": "stick", "cup": "cup", "cups": "cup", "tray": "tray", "trays": "tray",
}

ATTRIBUTES = (
    "organic", "large", "small", "medium", "big", "bigger", "smaller", "cheaper", "cheap", "fresh",
    "frozen", "low fat", "lowfat", "fat free", "nonfat", "skim", "whole", "diet", "sugar free",
    "gluten free", "unsalted", "salted", "family size", "store brand", "same", "usual",
)

# Phrases removed wherever they appear (politeness, cart words, ASR hesitations).
_FILLER_PHRASES = (
    "to my shopping basket", "to the shopping basket", "in my shopping basket", "in my shopping cart",
    "into my basket", "into the basket", "in my basket", "in the basket", "on my shopping list",
    "on the shopping list", "on the list", "onto my list", "onto the list", "to my trolley", "in my trolley",
    "to my groceries", "to my grocery list", "to the grocery list", "to our list", "to our cart",
    "for us", "for later", "for the week", "right now", "when you get a chance",
    "to my shopping cart", "to the shopping cart", "to my shopping list", "to my cart", "to the cart",
    "to my basket", "to the basket", "to my list", "to the list", "to my order", "in my cart",
    "into my cart", "into the cart", "from my cart", "from the cart", "out of my cart",
    "from my list", "from my basket", "from my order", "off my list", "on my list", "in the cart",
    "for me", "thank you", "thanks", "if you can", "if you could", "would you", "could you",
    "can you", "will you", "i would like to", "i'd like to", "id like to", "i want to", "i wanna",
    "i need to", "go ahead and", "please", "pls", "hey", "alexa", "okay", "ok", "uh", "uhm", "um",
    "umm", "er", "erm", "hmm", "ah", "like", "you know", "actually", "just", "also", "and then",
    "oh", "so", "well",
)

_REMOVE = ("i don't want", "i dont want", "i do not want", "remove", "delete", "take out", "take off", "get rid of", "drop", "cancel", "no more",
           "don't want", "dont want", "do not want", "scratch")
_REORDER = ("buy again", "order again", "reorder", "re order", "get again", "the usual", "my usual",
            "same as last time", "same again", "again")
_ASK = ("do i have", "is there", "are there", "how much", "how many", "what's in", "whats in",
        "what is in", "what is the price", "what's the price", "price of", "do you have",
        "do you sell", "is the", "are the", "have i got", "did i add", "what's", "whats", "what is")
_ADD = ("add", "put", "get me", "get", "buy", "order", "grab", "pick up", "throw in", "include",
        "i need", "we need", "i want", "we want", "i'd like", "id like", "i would like",
        "we're out of", "were out of", "we are out of", "out of", "need", "want", "more", "another",
        "purchase", "stock up on")
# Requests that are clearly not about shopping (an assistant gets these all the time).
_NOT_SHOPPING = {
    "weather", "joke", "jokes", "play", "music", "song", "songs", "timer", "alarm", "call", "text",
    "message", "lights", "light", "turn", "news", "remind", "reminder", "navigate", "directions",
    "volume", "stop", "pause", "resume", "skip", "who", "why", "when", "where", "time", "date",
    "hello", "hi", "goodbye", "bye", "yes", "no", "yeah", "nope", "sing", "story", "translate",
    "spell", "define", "calculate", "score", "temperature", "forecast", "podcast", "radio",
    "thermostat", "email", "meeting", "calendar", "cancel", "nothing", "never", "mind",
}
_ARTICLES = {"a", "an", "the", "some", "my", "our", "of", "more", "any", "that", "this", "those",
             "these", "me", "us", "it", "please", "and", "to", "for", "with", "in", "on"}
_CATEGORY = re.compile(r"^(?:category|subclass|aisle|department|code)?\s*(\d{2,6})$")
_TOKEN = re.compile(r"[a-z0-9][a-z0-9.'\-]*")


def _phrase(text: str, phrase: str) -> re.Match[str] | None:
    return re.search(rf"(?:^| ){re.escape(phrase)}(?= |$)", text)


def _strip(text: str, phrase: str) -> str:
    return re.sub(rf"(?:^| ){re.escape(phrase)}(?= |$)", " ", text)


def normalize(text: str | bytes | None) -> str:
    """Lower-case ASCII-ish words: bytes are decoded leniently, punctuation becomes space."""
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    text = unicodedata.normalize("NFKC", str(text)).replace("\ufffd", " ").lower()
    text = text.replace("’", "'").replace("&", " and ")
    text = re.sub(r"[^a-z0-9.'\- ]+", " ", text)
    text = re.sub(r"(?<![0-9])\.|\.(?![0-9])", " ", text)
    words = _TOKEN.findall(text)
    # ASR stutter: "add add milk" -> "add milk"
    deduped = [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]
    return " ".join(w.strip("'-") for w in deduped if w.strip("'-"))


def _number(words: list[str], i: int) -> tuple[float | None, int]:
    """Parse a quantity starting at ``words[i]``; returns (value, words consumed)."""
    w = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if re.fullmatch(r"\d+(\.\d+)?", w):
        return float(w), 1
    if w in ("a", "an") and nxt == "dozen":
        return 12.0, 2
    if w in ("a", "an") and nxt in ("couple", "pair"):
        return 2.0, 3 if i + 2 < len(words) and words[i + 2] == "of" else 2
    if w in ("a", "an", "one") and nxt in UNITS and nxt not in ("dozen", "l", "g"):
        return 1.0, 1
    if w in ("a", "an") and nxt == "few":
        return 3.0, 2
    if w in ("half", "a") and (nxt in _FRACTIONS or w == "half"):
        if w == "half":
            return 0.5, 2 if nxt in ("a", "an") else 1
        return _FRACTIONS[nxt], 2
    if w == "couple":
        return 2.0, 2 if nxt == "of" else 1
    if w == "dozen":
        return 12.0, 1
    if w in ("to", "too") and UNITS.get(nxt):
        return 2.0, 1  # ASR: "add to gallons of milk"
    if w == "for" and UNITS.get(nxt) and nxt not in ("can",):
        return 4.0, 1  # ASR: "for bottles of water"
    if w in _NUMBER_WORDS:
        value, used = float(_NUMBER_WORDS[w]), 1
        if nxt in _NUMBER_WORDS and _NUMBER_WORDS[w] >= 20 and 0 < _NUMBER_WORDS[nxt] < 10:
            value, used = value + _NUMBER_WORDS[nxt], 2  # "twenty four"
        if words[i + used: i + used + 3] in (["and", "a", "half"],):
            value, used = value + 0.5, used + 3
        if i + used < len(words) and words[i + used] == "dozen":
            value, used = value * 12, used + 1
        return value, used
    return None, 0


def _intent(text: str) -> tuple[Intent, str]:
    """Find the intent phrase; return the intent and the text with that phrase removed."""
    for intent, phrases in ((Intent.ask, _ASK), (Intent.remove, _REMOVE), (Intent.reorder, _REORDER),
                            (Intent.add, _ADD)):
        for phrase in phrases:
            m = _phrase(text, phrase)
            if m is not None and (intent is not Intent.ask or m.start() <= 1):
                rest = (text[: m.start()] + " " + text[m.end():]).strip()
                return intent, rest
    return Intent.unknown, text


def parse(text: str | bytes | None) -> ParsedUtterance:
    """Understand one utterance. Never raises: what it cannot read is ``Intent.unknown`` with a ``reason``."""
    try:
        return _parse(text)
    except Exception:  # noqa: BLE001 - the request path must always get an answer
        return _unknown("unreadable")


def _unknown(reason: str, **kw: object) -> ParsedUtterance:
    return ParsedUtterance(intent=Intent.unknown, reason=reason, **kw)  # type: ignore[arg-type]


_NEGATIVE = re.compile(r"(?:^|\s)[-\u2212]\s?\d")
_TIMES = re.compile(r"^(?:x(\d{1,3})|(\d{1,3})x)$")  # "x2", "2x"


def _parse(text: str | bytes | None) -> ParsedUtterance:
    if isinstance(text, str) and len(text) > MAX_CHARS:
        return _unknown("too_long")
    raw = normalize(text)
    if not raw:
        return _unknown("empty")
    if len(raw) > MAX_CHARS:
        return _unknown("too_long")
    if isinstance(text, str) and _NEGATIVE.search(text):
        return _unknown("negative_quantity")
    cleaned = raw
    for phrase in _FILLER_PHRASES:
        cleaned = _strip(cleaned, phrase)
    cleaned = " ".join(cleaned.split())
    if cleaned.startswith("take ") and cleaned != raw:  # "take the eggs off my list" (the filler went)
        cleaned = "remove " + cleaned[5:]
    intent, rest = _intent(cleaned)
    words = rest.split()
    if intent is not Intent.add:  # "get my usual bread", "how much is the salmon"
        while words and words[0] in ("get", "buy", "order", "add", "put", "is", "are", "does", "do", "i"):
            words.pop(0)
    if intent is Intent.ask and any(w in _NOT_SHOPPING for w in words):
        return _unknown("not_shopping")
    bare = intent is Intent.unknown
    if bare:
        if not words:
            return _unknown("no_product")
        if any(w in _NOT_SHOPPING for w in words) or len(words) > 6:
            return _unknown("not_shopping")
        intent = Intent.add  # "two gallons of milk" is an add request
    elif intent is Intent.add and any(w in _NOT_SHOPPING for w in words) and not _has_quantity(words):
        if {"play", "call", "text", "weather", "joke", "timer", "alarm", "song", "music"} & set(words):
            return _unknown("not_shopping")

    words, times = _times(words)
    # Category codes (Ta-Feng has no product names): "add 100205", "subclass 100205".
    code = _CATEGORY.match(" ".join(words))
    if code is not None and (len(code.group(1)) >= CODE_DIGITS or not words[0].isdigit()):
        return ParsedUtterance(intent=intent, quantity=times or 1.0, mention=code.group(1), category=code.group(1))
    quantity, unit, counted = 1.0, None, False
    mention_words: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if not mention_words and not counted and unit is None:
            value, used = _quantity(words, i)
            if value is not None:
                quantity, counted = value, True
                i += used
                if i < len(words) and words[i] in UNITS:
                    unit = UNITS[words[i]]
                    i += 1
                    if unit == "dozen":
                        quantity, unit = quantity * 12, None
                if i < len(words) and words[i] in ("of", "x"):  # "2 x milk"
                    i += 1
                continue
            if w in UNITS and w not in ("l", "g", "can") and len(words) > i + 1:
                unit = UNITS[w]
                i += 1
                if i < len(words) and words[i] == "of":
                    i += 1
                continue
        mention_words.append(w)
        i += 1
    while mention_words and mention_words[0] in _ARTICLES | {"usual", "regular"}:
        mention_words.pop(0)
    while mention_words and mention_words[-1] in _ARTICLES | {"again", "too", "as", "well"}:
        mention_words.pop()
    mention = " ".join(mention_words) or None
    if times is not None:
        if counted and quantity != 1.0:
            return _unknown("two_quantities", quantity=quantity, unit=unit)
        quantity = times
    if quantity <= 0 or quantity > MAX_QUANTITY:
        return _unknown("quantity_out_of_range", unit=unit)
    if mention is None and intent in (Intent.add, Intent.remove):
        return _unknown("no_product", quantity=quantity, unit=unit)
    category = None
    if mention is not None:
        m = _CATEGORY.match(mention)
        if m:
            category = m.group(1)
    attributes = [a for a in ATTRIBUTES if mention and _phrase(mention, a)]
    return ParsedUtterance(intent=intent, quantity=quantity, unit=unit, mention=mention,
                           category=category, attributes=attributes)


MAX_QUANTITY = 1000


def _quantity(words: list[str], i: int) -> tuple[float | None, int]:
    """:func:`_number`, except that a long digit string standing last is a code ("add 1 130206")."""
    w = words[i]
    if w.isdigit() and len(w) >= CODE_DIGITS and i == len(words) - 1:
        return None, 0
    return _number(words, i)


def _times(words: list[str]) -> tuple[list[str], float | None]:
    """A multiplier at either end ("x2", "2x", "times two", "two times") -> (other words, value)."""
    for at in (-1, 0):
        if words and (m := _TIMES.match(words[at])):
            rest = words[:-1] if at == -1 else words[1:]
            return rest, float(m.group(1) or m.group(2))
    if len(words) > 2 and words[-2] in ("x", "times") and (value := _word_number(words[-1])) is not None:
        return words[:-2], value
    if len(words) > 2 and words[-1] == "times" and (value := _word_number(words[-2])) is not None:
        return words[:-2], value
    return words, None


def _word_number(word: str) -> float | None:
    if re.fullmatch(r"\d{1,3}", word):
        return float(word)
    return float(_NUMBER_WORDS[word]) if word in _NUMBER_WORDS else None


def _has_quantity(words: list[str]) -> bool:
    return any(re.fullmatch(r"\d+(\.\d+)?", w) or w in _NUMBER_WORDS for w in words)
