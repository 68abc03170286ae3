"""What the assistant says back: the product as a shopper names it, and whether it is their usual one.

"Added two 15 OZ National hamburger buns, the ones you usually buy." The spoken name is the
catalogue's size, brand tier (the store's own label said as "store brand") and title, each said once
(a title that already holds its brand or size does not get it twice); a catalogue of codes (Ta-Feng)
says "product 500804".
"""

from __future__ import annotations

from voicecart.ranking.catalog import Catalog
from voicecart.ranking.taste import PRIVATE_BRANDS
from voicecart.schemas import CustomerProfile, Intent, ParsedUtterance

_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
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
    whole = float(quantity).is_integer() and 0 <= quantity < len(_WORDS)
    q = _WORDS[int(quantity)] if whole else f"{quantity:g}"
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
