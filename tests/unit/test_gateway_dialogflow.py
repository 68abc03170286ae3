"""Dialogflow CX: the webhook's shared-secret check, WebhookRequest (official types, proto JSON) -> turn,
and Reply -> a WebhookResponse that parses back, with the session parameters carrying the state."""

from __future__ import annotations

import orjson
import pytest
from google.cloud.dialogflowcx_v3.types import webhook

from voicecart.gateway.dialogflow import STATE, DialogflowWebhook, WebhookResponse, plain
from voicecart.gateway.mapping import Action, CartLine, Reply, SessionState
from voicecart.gateway.settings import DialogflowSettings

SECRET = "a-long-enough-shared-secret"
W = webhook.WebhookRequest


def hook(**settings: object) -> DialogflowWebhook:
    return DialogflowWebhook(DialogflowSettings(enabled=True, secret=SECRET, **settings), conversations=None)  # type: ignore[arg-type]


def request(tag: str, text: str | None = None, params: dict | None = None, intent_params: dict | None = None) -> W:
    req = W(fulfillment_info=W.FulfillmentInfo(tag=tag), language_code="en",
            session_info=webhook.SessionInfo(session="projects/p/locations/global/agents/a/sessions/s-1",
                                             parameters=params or {}))
    if text is not None:
        req.text = text
    if intent_params:
        req.intent_info = W.IntentInfo(parameters={k: W.IntentInfo.IntentParameterValue(original_value=str(v),
                                                                                         resolved_value=v)
                                                    for k, v in intent_params.items()})
    return req


@pytest.mark.parametrize("headers, ok", [
    ({"x-voicecart-webhook-secret": SECRET}, True),
    ({"x-voicecart-webhook-secret": SECRET + "x"}, False),
    ({"x-voicecart-webhook-secret": ""}, False),
    ({}, False),
    ({"authorization": f"Bearer {SECRET}"}, False),  # the header mode wants the header
])
def test_header_secret(headers, ok):
    assert hook().authorized(headers) is ok


@pytest.mark.parametrize("headers, ok", [
    ({"authorization": f"Bearer {SECRET}"}, True),
    ({"authorization": f"bearer {SECRET}"}, True),
    ({"authorization": f"Basic {SECRET}"}, False),
    ({"authorization": "Bearer nope"}, False),
    ({"x-voicecart-webhook-secret": SECRET}, False),
])
def test_bearer_token(headers, ok):
    assert hook(auth="bearer").authorized(headers) is ok


def test_an_enabled_webhook_needs_a_real_secret():
    with pytest.raises(ValueError, match="secret"):
        DialogflowSettings(enabled=True)
    with pytest.raises(ValueError, match="secret"):
        DialogflowSettings(enabled=True, secret="short")


@pytest.mark.parametrize("tag, text, intent_params, action, words", [
    ("add", "add two milk", None, Action.resolve, "add two milk"),
    ("add", "I want milk", {"product": "milk", "quantity": 2.0}, Action.resolve, "add 2 milk"),
    ("remove", "the milk please", {"product": "milk"}, Action.resolve, "remove milk"),
    ("reorder", None, {"product": "coffee"}, Action.resolve, "reorder coffee"),
    ("ask", None, {"product": "rice"}, Action.resolve, "do you have rice"),
    ("add", None, None, Action.resolve, None),
    ("follow-up", "no, the other one", None, Action.follow_up, "no, the other one"),
    ("confirm", "yes", None, Action.confirm, "yes"),
    ("end", "bye", None, Action.end, "bye"),
    ("welcome", None, None, Action.launch, None),
    ("help", "help", None, Action.help, "help"),
])
def test_tags_and_parameters_become_turns(tag, text, intent_params, action, words):
    # the request goes through proto JSON, as it arrives
    body = W.to_json(request(tag, text, {"voicecart_user_id": "u-7"}, intent_params))
    turn = hook().turn(W.from_json(body), orjson.loads(body), tag)
    assert (turn.action, turn.utterance) == (action, words)
    assert turn.users == ("u-7",) and turn.locale == "en" and turn.session.endswith("/sessions/s-1")


def test_the_state_parameter_comes_back_as_plain_data():
    state = SessionState(line=CartLine(request_id="r1", product_id="P1", heard=["P1", "P2"], at=5.0)).model_dump()
    body = W.to_json(request("follow-up", "make it two", {STATE: state}))
    turn = hook().turn(W.from_json(body), orjson.loads(body), "follow-up")
    assert SessionState.model_validate(turn.state).line.heard == ["P1", "P2"]
    assert turn.users == ()


def response_params(reply: Reply) -> tuple[list[str], dict]:
    parsed = WebhookResponse.from_json(orjson.dumps(DialogflowWebhook.response(reply)))  # strict: no unknown fields
    return [m.text.text[0] for m in parsed.fulfillment_response.messages], plain(parsed.session_info.parameters)


def test_a_standing_line_is_published_in_the_session_parameters():
    line = CartLine(request_id="r1", product_id="P7", title="Milk 1 l", quantity=2.0, unit=None, at=9.0)
    texts, params = response_params(Reply("Okay, 2 x Milk 1 l. Anything else?", SessionState(line=line),
                                          needs_confirmation=True))
    assert texts == ["Okay, 2 x Milk 1 l. Anything else?"]
    assert params["voicecart_product_id"] == "P7" and params["voicecart_quantity"] == 2.0
    assert params["voicecart_needs_confirmation"] is True and params[STATE]["line"]["request_id"] == "r1"


def test_an_ended_or_cancelled_line_is_deleted_with_nulls():
    _, ended = response_params(Reply("Goodbye.", None, end_session=True))
    assert ended[STATE] is None and ended["voicecart_product_id"] is None and ended["voicecart_end_session"] is True
    cancelled = SessionState(line=CartLine(request_id="r1", product_id="P7", at=1.0, standing=False))
    _, params = response_params(Reply("Okay, I took it out.", cancelled))
    assert params["voicecart_product_id"] is None and params[STATE]["line"]["standing"] is False


def test_an_unlinked_shopper_gets_a_second_message_with_the_hint():
    texts, _ = response_params(Reply("Adding milk. Is that the one you want?", SessionState(hinted=True), link_hint=True))
    assert len(texts) == 2 and "link your account" in texts[1]
