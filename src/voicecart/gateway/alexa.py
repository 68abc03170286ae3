"""Alexa custom skill (``POST /alexa``): verified ASK request envelopes <-> the shared mapping.

Order of checks, each a 400 with the reason before anything is resolved: the body parses as JSON,
its signature verifies against the certificate chain, it deserializes to an ``ask_sdk_model``
``RequestEnvelope``, its timestamp is fresh, and it is for this skill. Then Launch, Intent and
SessionEnded requests become :class:`~voicecart.gateway.mapping.VoiceTurn`s; the reply goes back
as a ``ResponseEnvelope`` with SSML speech, a reprompt when the answer needs confirmation, and the
session state in ``sessionAttributes``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import orjson
from ask_sdk_core.exceptions import SerializationException
from ask_sdk_core.response_helper import ResponseFactory
from ask_sdk_core.serialize import DefaultSerializer
from ask_sdk_model import IntentRequest, LaunchRequest, RequestEnvelope, ResponseEnvelope, SessionEndedRequest
from ask_sdk_model.ui import LinkAccountCard

from voicecart.gateway.alexa_verify import SignatureVerifier, SkillIdVerifier, TimestampVerifier, VerificationFailed
from voicecart.gateway.mapping import Action, Conversations, Reply, VoiceTurn, utterance_from_slots
from voicecart.gateway.settings import AlexaSettings

log = logging.getLogger("voicecart.gateway.alexa")

STATE_KEY = "voicecart"
LINK_HINT = "To get answers that know your usual products, link your account in the Alexa app."

# intent -> (action, how its slots become words)
SHOPPING = {"AddItemIntent": "add", "RemoveItemIntent": "remove", "ReorderItemIntent": "reorder",
            "FindItemIntent": "ask"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @classmethod
    def of(cls, status: int, body: dict) -> "Answer":
        return cls(status, orjson.dumps(body))


class AlexaSkill:
    def __init__(self, settings: AlexaSettings, conversations: Conversations,
                 signature: SignatureVerifier | None = None) -> None:
        self.settings = settings
        self.conversations = conversations
        self.signature = signature or SignatureVerifier(settings.cert_dir, settings.trust_roots)
        self.checks = [TimestampVerifier(settings.timestamp_tolerance_s), SkillIdVerifier(settings.skill_ids)]
        self.serializer = DefaultSerializer()

    async def handle(self, headers: Any, body: bytes) -> Answer:
        try:
            envelope = await self.verified(headers, body)
        except VerificationFailed as exc:
            log.warning("alexa request refused: %s", exc)
            return error(400, str(exc))
        turn = self.turn(envelope)
        if turn is None:  # a request type this skill does not act on (e.g. System.ExceptionEncountered)
            return Answer.of(200, {"version": "1.0", "response": {}})
        reply = await self.conversations.handle(turn)
        if isinstance(envelope.request, SessionEndedRequest):
            return Answer.of(200, {"version": "1.0", "response": {}})  # Alexa takes no speech here
        return Answer.of(200, self.response(reply))

    async def verified(self, headers: Any, body: bytes) -> RequestEnvelope:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise VerificationFailed(f"body: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("request"), dict):
            raise VerificationFailed("body: not an Alexa request envelope (no 'request' object)")
        url = next((v for k, v in headers.items() if k.lower() == "signaturecertchainurl"), None)
        if url and not self.signature.cached(url):
            SignatureVerifier.validate_url(url)  # never fetch from a URL the rules refuse
            await asyncio.to_thread(self.signature.chain, url)
        self.signature.verify(headers, body)
        envelope = self.envelope(data)
        for check in self.checks:
            check.verify(headers, body, envelope)
        return envelope

    def envelope(self, data: dict) -> RequestEnvelope:
        """The ask_sdk_model envelope of a verified body; the device context beyond System's
        application and user is left out (nothing here reads it, and it is most of the cost)."""
        system = ((data.get("context") or {}).get("System") or {}) if isinstance(data.get("context"), dict) else {}
        slim = {**data, "context": {"System": {k: system[k] for k in ("application", "user") if k in system}}}
        try:
            envelope = self.serializer.deserialize(orjson.dumps(slim).decode(), RequestEnvelope)
        except (SerializationException, TypeError, ValueError, AttributeError) as exc:
            raise VerificationFailed(f"request: not an Alexa request envelope ({exc})") from None
        if envelope is None or envelope.request is None:
            raise VerificationFailed("request: missing")
        return envelope

    def turn(self, envelope: RequestEnvelope) -> VoiceTurn | None:
        request = envelope.request
        session = envelope.session
        user = session.user if session is not None and session.user is not None else getattr(
            envelope.context.system if envelope.context else None, "user", None)
        users = tuple(u for u in (getattr(user, "access_token", None), getattr(user, "user_id", None)) if u)
        state = (session.attributes or {}).get(STATE_KEY) if session is not None else None
        base = dict(platform="alexa", session=(session.session_id if session is not None else None)
                    or request.request_id or "alexa", users=users, locale=request.locale, state=state)
        if isinstance(request, LaunchRequest):
            return VoiceTurn(action=Action.launch, **base)
        if isinstance(request, SessionEndedRequest):
            return VoiceTurn(action=Action.end, **base)
        if not isinstance(request, IntentRequest) or request.intent is None:
            return None
        name = request.intent.name
        slots = {k: (v.value if v is not None else None) for k, v in (request.intent.slots or {}).items()}
        if name in SHOPPING:
            words = utterance_from_slots(SHOPPING[name], slots.get("product"), slots.get("quantity"))
            return VoiceTurn(action=Action.resolve, utterance=words, **base)
        follow = self._follow_up_words(name, slots, state)
        if follow is not None:
            action, words = follow
            return VoiceTurn(action=action, utterance=words, **base)
        log.warning("alexa intent %r is not one this skill handles", name)
        return VoiceTurn(action=Action.unknown, **base)

    @staticmethod
    def _follow_up_words(name: str, slots: dict, state: Any) -> tuple[Action, str | None] | None:
        if name in ("OtherOneIntent", "AMAZON.NoIntent"):
            attribute = (slots.get("attribute") or "").strip()
            return Action.follow_up, f"the {attribute} one" if attribute else "no, the other one"
        if name == "ChangeQuantityIntent":
            quantity = (slots.get("quantity") or "").strip()
            return Action.follow_up, f"make it {quantity}" if quantity else None
        if name == "AMAZON.YesIntent":
            return Action.confirm, None
        if name == "AMAZON.CancelIntent":  # "cancel" undoes the line just added; with none, it ends
            has_line = isinstance(state, dict) and isinstance(state.get("line"), dict) and state["line"].get("standing")
            return (Action.follow_up, "cancel that") if has_line else (Action.end, None)
        if name == "AMAZON.StopIntent":
            return Action.end, None
        if name in ("AMAZON.HelpIntent", "AMAZON.NavigateHomeIntent"):
            return Action.help, None
        if name == "AMAZON.FallbackIntent":
            return Action.unknown, None
        return None

    def response(self, reply: Reply) -> dict:
        speech = reply.speech + (" " + LINK_HINT if reply.link_hint else "")
        factory = ResponseFactory().speak(_ssml(speech))
        if reply.reprompt and not reply.end_session:
            factory = factory.ask(_ssml(reply.reprompt))
        if reply.link_hint:
            factory = factory.set_card(LinkAccountCard())
        factory = factory.set_should_end_session(reply.end_session)
        attributes = {STATE_KEY: reply.state.model_dump(mode="json")} if reply.state is not None else {}
        envelope = ResponseEnvelope(version="1.0", session_attributes=attributes, response=factory.response)
        return self.serializer.serialize(envelope)


def _ssml(text: str) -> str:
    """Plain words -> SSML content (ResponseFactory adds <speak>): product titles may hold & or <."""
    return escape(text)


def error(status: int, reason: str) -> Answer:
    """A refusal ``{"error": reason}`` (4xx: Alexa speaks no body then); for a turn the gateway itself
    failed (200), a spoken apology that ends the session."""
    if status != 200:
        return Answer.of(status, {"error": reason})
    response = ResponseFactory().speak(_ssml("Sorry, something went wrong on my side. Please try again.")) \
        .set_should_end_session(True).response
    return Answer.of(200, DefaultSerializer().serialize(ResponseEnvelope(version="1.0", response=response)))
