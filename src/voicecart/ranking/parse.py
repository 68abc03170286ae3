"""The language of a voice turn: what the shopper said, and what the assistant says back.

- :func:`parse`: intent, quantity, unit and the product mention from ASR text. Rule-based on purpose: it
  runs on every request in microseconds, its behaviour is pinned by a table of utterances in
  ``tests/unit/test_parse_utterances.py``, and it never raises — anything it does not understand is
  ``Intent.unknown``.
- :func:`follow_up`: a turn that refers to the last answer — "no, the other one" (next alternative), "the
  organic one" / "the bigger one" (the same candidates under a constraint), "make it three" (quantity),
  "cancel that" (undo); :func:`size_of` reads a size from a title for "bigger"/"smaller".
- :func:`confirmation`: the sentence spoken back. "Added two 15 OZ National hamburger buns, the ones you
  usually buy." The spoken name (:func:`spoken_name`) is the catalogue's size, brand tier (the store's own
  label said as "store brand") and title, each said once (a title that already holds its brand or size does
  not get it twice); a catalogue of codes (Ta-Feng) says "product 500804".
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from voicecart.ranking.taste import PRIVATE_BRANDS
from voicecart.schemas import CustomerProfile, Intent, ParsedUtterance

if TYPE_CHECKING:
    from voicecart.ranking.catalog import Catalog

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
_SAID = [w for w, v in sorted(_NUMBER_WORDS.items(), key=lambda kv: kv[1]) if v <= 12]
"""The amounts said as words in a confirmation ("two"); larger ones are said as digits."""

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


@functools.lru_cache(maxsize=4096)
def _phrase_re(phrase: str) -> re.Pattern[str]:
    return re.compile(rf"(?:^| ){re.escape(phrase)}(?= |$)")


def _phrase(text: str, phrase: str) -> re.Match[str] | None:
    """The phrase as whole words in the text (the substring test first: most phrases are not there)."""
    return _phrase_re(phrase).search(text) if phrase in text else None


def _strip(text: str, phrase: str) -> str:
    return _phrase_re(phrase).sub(" ", text) if phrase in text else text


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


# -- follow-ups ------------------------------------------------------------------------------------

class FollowUpKind(str, Enum):
    next = "next"
    constrain = "constrain"
    quantity = "quantity"
    cancel = "cancel"


@dataclass(frozen=True)
class FollowUp:
    kind: FollowUpKind
    constraint: str | None = None
    """For ``constrain``: organic, bigger, smaller, cheaper, ... (the word the shopper used)."""
    quantity_text: str | None = None
    """For ``quantity``: the words after "make it", parsed by the utterance parser."""


_NEXT = re.compile(
    r"^(?:no[,.!]?\s*)?(?:not (?:that|this)(?: one)?|(?:the|an|a) ?other one|another one|something else|"
    r"a different one|(?:the )?next one|try (?:again|another)|wrong one)[.!]?$")
_CANCEL = re.compile(r"^(?:no[,.!]?\s*)?(?:cancel(?: that| it| this)?|never ?mind|undo(?: that| it)?|forget (?:it|that)|"
                     r"scratch that|take (?:it|that) (?:out|back|off))[.!]?$")
_QUANTITY = re.compile(r"^(?:no[,.!]?\s*)?(?:make (?:it|that)|change (?:it|that) to|i meant|actually|let'?s do)\s+(.+?)[.!]?$")
_CONSTRAIN = re.compile(r"^(?:no[,.!]?\s*)?(?:i want |i meant |give me |get )?(?:the|a|an) ([a-z][a-z -]*?) (?:one|ones|kind|version)[.!]?$")
CONSTRAINTS = {
    "organic": "organic", "bigger": "bigger", "larger": "bigger", "big": "bigger", "large": "bigger",
    "smaller": "smaller", "small": "smaller", "little": "smaller", "cheaper": "cheaper", "cheap": "cheaper",
    "cheapest": "cheaper", "less expensive": "cheaper",
}


def follow_up(text: str) -> FollowUp | None:
    """The follow-up this utterance is, or None when it is a new request."""
    t = " ".join(text.lower().replace(",", ", ").split()).strip()
    if _CANCEL.match(t):
        return FollowUp(FollowUpKind.cancel)
    if _NEXT.match(t):
        return FollowUp(FollowUpKind.next)
    if m := _QUANTITY.match(t):
        return FollowUp(FollowUpKind.quantity, quantity_text=m.group(1))
    if m := _CONSTRAIN.match(t):
        words = m.group(1).strip()
        if words not in ("other", "same", "next", "different"):
            return FollowUp(FollowUpKind.constrain, constraint=CONSTRAINTS.get(words, words))
    return None


_SIZE_WORDS = {"mini": 0.5, "small": 1, "regular": 2, "medium": 2, "large": 3, "big": 3, "jumbo": 4,
               "family size": 4, "family": 4, "value pack": 4, "bulk": 5}
_UNIT_BASE = {"ml": ("ml", 1), "l": ("ml", 1000), "liter": ("ml", 1000), "litre": ("ml", 1000),
              "gal": ("ml", 3785), "gallon": ("ml", 3785), "fl oz": ("ml", 29.6), "oz": ("g", 28.35),
              "g": ("g", 1), "kg": ("g", 1000), "lb": ("g", 453.6), "lbs": ("g", 453.6), "ct": ("ct", 1),
              "pack": ("ct", 1), "pk": ("ct", 1), "count": ("ct", 1)}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(fl oz|ml|l|liter|litre|gal|gallon|oz|g|kg|lbs|lb|ct|pack|pk|count)\b")


def size_of(title: str | None) -> tuple[str, float] | None:
    """(kind, amount) from a product title: ("ml", 1000) for "1 l", ("word", 3) for "large"."""
    if not title:
        return None
    t = title.lower()
    if m := _SIZE_RE.search(t):
        base, factor = _UNIT_BASE[m.group(2)]
        return base, float(m.group(1)) * factor
    for word, rank in sorted(_SIZE_WORDS.items(), key=lambda kv: -len(kv[0])):
        if re.search(rf"\b{word}\b", t):
            return "word", float(rank)
    return None


# -- what the assistant says back ------------------------------------------------------------------

USUAL_COUNT = 2
"""Bought in this many orders or more: "the ones you usually buy"; fewer, but bought: "the ones you bought before"."""

_UNKNOWN_SPEECH = {
    "negative_quantity": "Sorry, I can't add a negative amount. How many would you like?",
    "quantity_out_of_range": "Sorry, that amount is more than I can add at once. How many would you like?",
    "two_quantities": "Sorry, I heard two amounts. How many would you like?",
    "too_long": "Sorry, that was a lot at once. Could you ask for one product at a time?",
    "not_shopping": "Sorry, I can only help with your shopping cart.",
}


def amount(quantity: float, unit: str | None) -> str:
    """How many, as said before the product: "two", "3 cans of", "" for one plain item."""
    whole = float(quantity).is_integer() and 0 <= quantity < len(_SAID)
    q = _SAID[int(quantity)] if whole else f"{quantity:g}"
    if unit:
        return f"{q} {unit}{'' if quantity == 1 else 's'} of"
    return "" if quantity == 1 else q


def spoken_name(catalog: Catalog, index: int) -> str:
    """Size, brand tier and title of one catalogue product, as said aloud."""
    title = catalog.titles[index] or f"product {catalog.product_ids[index]}"
    said = title.lower()
    words = []
    size = " ".join((catalog.sizes[index] or "").split())
    if size and size.lower() not in said:
        words.append(size)
    brand = (catalog.brands[index] or "").strip()
    if brand.lower() in PRIVATE_BRANDS:
        words.append("store brand")
    elif brand and brand.lower() not in said:
        words.append(brand)
    return " ".join([*words, title])


def times_bought(profile: CustomerProfile | None, product_id: str | None) -> int:
    """Orders of this customer holding the product, from the one profile row (0 when unknown)."""
    if profile is None or product_id is None:
        return 0
    try:
        return int(profile.product_counts[profile.product_ids.index(product_id)])
    except ValueError:
        return 0


def confirmation(parsed: ParsedUtterance, name: str | None, bought: int = 0) -> str:
    """The sentence the assistant speaks back for a new request (``name`` None: nothing found)."""
    if parsed.intent is Intent.unknown:
        return _UNKNOWN_SPEECH.get(parsed.reason or "", "Sorry, I didn't catch what to add. Could you say it again?")
    if name is None:
        return f"Sorry, I couldn't find {parsed.mention or 'that'}."
    habit = ("the ones you usually buy" if bought >= USUAL_COUNT
             else "the ones you bought before" if bought > 0 else None)
    if parsed.intent is Intent.remove:
        return f"Removed {name} from your cart."
    if parsed.intent is Intent.ask:
        return f"I found {name}{', ' + habit if habit else ''}."
    what = " ".join(w for w in (amount(parsed.quantity, parsed.unit), name) if w)
    return f"Added {what}, {habit}." if habit else f"Added {what} to your cart."
