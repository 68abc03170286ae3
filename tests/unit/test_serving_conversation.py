"""Follow-up turns: what each utterance means, and what it does to the remembered answer."""

from __future__ import annotations

import pytest

from voicecart.schemas import Intent
from voicecart.ranking.parse import FollowUpKind, follow_up, size_of
from voicecart.serving.engine import MemoryConversationStore, Turn

# utterance, kind (None = a new request), constraint / quantity words
FOLLOW_UPS = [
    ("no, the other one", FollowUpKind.next, None),
    ("the other one", FollowUpKind.next, None),
    ("not that one", FollowUpKind.next, None),
    ("No, something else.", FollowUpKind.next, None),
    ("another one", FollowUpKind.next, None),
    ("the organic one", FollowUpKind.constrain, "organic"),
    ("no, the bigger one", FollowUpKind.constrain, "bigger"),
    ("the larger one", FollowUpKind.constrain, "bigger"),
    ("a smaller one", FollowUpKind.constrain, "smaller"),
    ("the cheaper one", FollowUpKind.constrain, "cheaper"),
    ("make it three", FollowUpKind.quantity, "three"),
    ("make that 2 gallons", FollowUpKind.quantity, "2 gallons"),
    ("actually five", FollowUpKind.quantity, "five"),
    ("cancel that", FollowUpKind.cancel, None),
    ("never mind", FollowUpKind.cancel, None),
    ("undo", FollowUpKind.cancel, None),
    ("scratch that", FollowUpKind.cancel, None),
    ("add milk", None, None),
    ("organic milk", None, None),
    ("two loaves of bread", None, None),
    ("no", None, None),
    ("the milk", None, None),
]


@pytest.mark.parametrize("text, kind, detail", FOLLOW_UPS)
def test_follow_up_table(text, kind, detail):
    got = follow_up(text)
    if kind is None:
        assert got is None
        return
    assert got is not None and got.kind is kind
    if kind is FollowUpKind.constrain:
        assert got.constraint == detail
    if kind is FollowUpKind.quantity:
        assert got.quantity_text == detail


@pytest.mark.parametrize("title, size", [
    ("acme milk 1 l", ("ml", 1000.0)), ("acme milk 500 ml", ("ml", 500.0)), ("rice 1 kg", ("g", 1000.0)),
    ("golden bread family size", ("word", 4.0)), ("acme milk small", ("word", 1.0)), ("plain bread", None),
    (None, None),
])
def test_size_of_titles(title, size):
    assert size_of(title) == size


def _turn() -> Turn:
    return Turn(customer_id="c1", request_id="r1",
                product_ids=["a", "b", "c", "d"],
                titles=["acme milk 1 l", "organic milk 1 l", "acme milk 2 l", "acme milk 500 ml"],
                scores=[4.0, 3.0, 2.0, 1.0], rel_price=[0.0, 0.3, -0.2, -0.5], position=0,
                quantity=1.0, unit=None, intent=Intent.add, personalized=True)


@pytest.mark.parametrize("constraint, expected", [
    ("organic", "b"), ("bigger", "c"), ("smaller", "d"), ("cheaper", "c"), ("kosher", None),
])
def test_constraints_pick_the_best_ranked_candidate_that_satisfies_them(constraint, expected):
    turn = _turn()
    pos = turn.constrained_position(constraint)
    assert (turn.product_ids[pos] if pos is not None else None) == expected


def test_next_skips_rejected_candidates():
    turn = _turn()
    assert turn.next_position() == 1
    turn.rejected.add(1)
    assert turn.next_position() == 2


def test_store_expires_turns_and_keeps_customers_apart():
    store = MemoryConversationStore(ttl_s=10, max_conversations=2)
    store.put("conv", _turn(), now=0.0)
    assert store.get("conv", "c1", now=5.0) is not None
    assert store.get("conv", "someone-else", now=5.0) is None
    assert store.get("conv", "c1", now=11.0) is None
    for i in range(3):
        store.put(f"k{i}", _turn(), now=0.0)
    assert len(store) == 2 and store.get("k0", "c1", now=1.0) is None


def test_a_turn_survives_its_json_form_as_the_redis_backend_stores_it():
    import json

    turn = _turn()
    turn.rejected.add(1)
    turn.position = 2
    again = Turn.from_dict(json.loads(json.dumps(turn.to_dict())))
    assert again == turn and again.intent is turn.intent
