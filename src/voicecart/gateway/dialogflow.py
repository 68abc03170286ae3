"""Dialogflow CX webhook (``POST /dialogflow/cx/webhook``): proto-JSON ``WebhookRequest`` <-> the shared mapping.

The agent authenticates with a shared secret it sends on every call, as a header of the webhook
(``auth: header``) or as ``Authorization: Bearer`` (``auth: bearer``); a wrong or missing one is a
401. The route's ``fulfillmentInfo.tag`` says what the turn is: ``add``, ``remove``, ``reorder``,
``ask`` (a shopping request; the ``product`` / ``quantity`` parameters or the shopper's words),
``follow-up`` ("no, the other one", "make it two", "cancel that"), ``confirm``, ``end``,
``welcome`` and ``help``. The conversation state travels in ``sessionInfo.parameters``
(``voicecart_state``; a null deletes it), next to ``voicecart_product_id`` / ``_product`` /
``_quantity`` / ``_needs_confirmation`` for the agent's own routes.

Requests are parsed and checked by the official ``WebhookRequest`` type; its Struct parameters are
read from the same proto JSON as plain data. Answers are written as proto JSON directly (building
proto-plus messages cost more than the rest of the turn); the tests parse every answer back into
the official ``WebhookResponse``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from google.cloud.dialogflowcx_v3.types import webhook
from google.protobuf.json_format import ParseError

from voicecart.gateway.mapping import Action, Conversations, Reply, VoiceTurn, utterance_from_slots
from voicecart.gateway.settings import DialogflowSettings

log = logging.getLogger("voicecart.gateway.dialogflow")

WebhookRequest = webhook.WebhookRequest
WebhookResponse = webhook.WebhookResponse

STATE = "voicecart_state"
TAGS = {"add": Action.resolve, "remove": Action.resolve, "reorder": Action.resolve, "ask": Action.resolve,
        "follow-up": Action.follow_up, "confirm": Action.confirm, "end": Action.end, "welcome": Action.launch,
        "help": Action.help}
LINK_HINT = "To get answers that know your usual products, link your account with the shop."
APOLOGY = "Sorry, something went wrong on my side. Please try again."
OUTPUTS = ("voicecart_product_id", "voicecart_product", "voicecart_quantity", "voicecart_unit",
           "voicecart_needs_confirmation")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class DialogflowWebhook:
    def __init__(self, settings: DialogflowSettings, conversations: Conversations) -> None:
        assert settings.secret is not None, "the settings model refuses an enabled webhook without a secret"
        self.settings = settings
        self.conversations = conversations
        self._expected = settings.secret.get_secret_value().encode()

    def authorized(self, headers: Mapping[str, str]) -> bool:
        if self.settings.auth == "bearer":
            scheme, _, token = (headers.get("authorization") or "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else ""
        else:
            given = headers.get(self.settings.header.lower()) or ""
        return hmac.compare_digest(given.encode(), self._expected)

    async def handle(self, headers: Mapping[str, str], body: bytes) -> Answer:
        if not self.authorized(headers):
            return error(401, "authorization: missing or wrong webhook secret")
        try:
            request = WebhookRequest.from_json(body.decode("utf-8"), ignore_unknown_fields=True)
            raw = orjson.loads(body)
        except (ParseError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
            return error(400, f"body: not a Dialogflow CX WebhookRequest ({str(exc)[:200]})")
        tag = request.fulfillment_info.tag
        if tag not in TAGS:
            log.warning("dialogflow webhook called with tag %r", tag[:64])
            return error(400, f"fulfillmentInfo.tag: {tag[:64]!r} is not one of {', '.join(TAGS)}")
        if not request.session_info.session:
            return error(400, "sessionInfo.session: missing")
        reply = await self.conversations.handle(self.turn(request, raw, tag))
        return Answer(200, orjson.dumps(self.response(reply)))

    def turn(self, request: WebhookRequest, raw: dict, tag: str) -> VoiceTurn:
        """``raw`` is the same request as plain JSON (its Struct parameters as dicts)."""
        params = (raw.get("sessionInfo") or {}).get("parameters") or {}
        user = params.get(self.settings.user_parameter)
        words = request.text or request.transcript or None
        if TAGS[tag] is Action.resolve:
            slots = {k: v.get("resolvedValue", v.get("originalValue"))
                     for k, v in ((raw.get("intentInfo") or {}).get("parameters") or {}).items() if isinstance(v, dict)}
            product = slots.get("product") or params.get("product")
            quantity = slots.get("quantity") or params.get("quantity")
            if isinstance(product, str) and product.strip():
                words = utterance_from_slots(tag, product, quantity)  # the agent extracted it: the tag decides
        return VoiceTurn(platform="dialogflow", session=request.session_info.session,
                         users=(str(user),) if isinstance(user, (str, int, float)) and str(user) else (),
                         action=TAGS[tag], utterance=words, locale=request.language_code or None,
                         state=params.get(STATE))

    @staticmethod
    def response(reply: Reply) -> dict:
        """The ``WebhookResponse`` of a reply, as proto JSON."""
        texts = [reply.speech] + ([LINK_HINT] if reply.link_hint else [])
        line = reply.state.line if reply.state is not None else None
        params: dict[str, Any] = {STATE: reply.state.model_dump(mode="json") if reply.state is not None else None}
        if line is not None and line.standing:
            params.update(voicecart_product_id=line.product_id, voicecart_product=line.title,
                          voicecart_quantity=line.quantity, voicecart_unit=line.unit,
                          voicecart_needs_confirmation=reply.needs_confirmation)
        else:
            params.update(dict.fromkeys(OUTPUTS))  # null deletes them in the session
        if reply.end_session:
            params["voicecart_end_session"] = True
        return {"fulfillmentResponse": _messages(texts), "sessionInfo": {"parameters": params}}


def error(status: int, reason: str) -> Answer:
    """The platform's shape for a refused call: a WebhookResponse with an apology and the reason in ``payload``."""
    return Answer(status, orjson.dumps({"fulfillmentResponse": _messages([APOLOGY]), "payload": {"error": reason}}))


def _messages(texts: list[str]) -> dict:
    return {"messages": [{"text": {"text": [t]}} for t in texts]}


def plain(value: Any) -> Any:
    """proto-plus containers (Struct maps, lists) -> plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value
