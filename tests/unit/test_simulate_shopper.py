"""The replay's simulated shopper: kept then bought, swapped to what they bought, else removed."""

from __future__ import annotations

from datetime import datetime, timezone

from voicecart.schemas.api import FeedbackEvent
from voicecart.simulate.shopper import Ask, outcome, react

ASK = Ask("20010201-c1-100205", "c1", "100205", "100205", ("p2", "p9"), datetime(2001, 2, 1, 10, tzinfo=timezone.utc))


def _answer(product: str | None, *alternatives: str) -> dict:
    return {"product": {"id": product} if product else None, "alternatives": [{"id": a} for a in alternatives],
            "arm": "canary", "model_version": "v0002"}


def test_the_bought_product_as_the_answer_is_kept_then_bought() -> None:
    events = react(ASK, _answer("p9", "p1"))
    assert [e["kind"] for e in events] == ["kept", "bought"]
    assert {e["product_id"] for e in events} == {"p9"}
    assert outcome(events) == "kept"


def test_a_bought_alternative_is_swapped_in() -> None:
    events = react(ASK, _answer("p1", "p5", "p2"))
    assert [(e["kind"], e["product_id"], e["substitute_id"]) for e in events] == [("swapped", "p1", "p2")]


def test_an_answer_they_did_not_buy_is_removed_and_no_answer_sends_nothing() -> None:
    assert [e["kind"] for e in react(ASK, _answer("p1", "p3"))] == ["removed"]
    assert react(ASK, _answer(None)) == [] and outcome([]) == "unanswered"


def test_every_event_is_a_valid_feedback_body_carrying_the_answers_arm_and_version() -> None:
    for answer in (_answer("p9"), _answer("p1", "p2"), _answer("p1")):
        for body in react(ASK, answer):
            event = FeedbackEvent.model_validate(body)
            assert (event.arm, event.model_version, event.request_id) == ("canary", "v0002", ASK.request_id)
            assert event.timestamp >= ASK.timestamp
    ids = [e["event_id"] for e in react(ASK, _answer("p9"))]
    assert len(set(ids)) == 2


def test_the_request_says_the_category() -> None:
    assert ASK.body() == {"customer_id": "c1", "utterance": "add 100205 to my cart", "request_id": ASK.request_id}
