"""The one mapping every platform shares: a platform-neutral voice turn -> ResolveRequest -> a reply.

Adapters (:mod:`.dialogflow`, :mod:`.alexa`) only translate their platform's messages into a
:class:`VoiceTurn` and a :class:`Reply` back into their platform's answer. Everything else lives
here: who the customer is, what is sent to the endpoint, what is said, what the session remembers
(:class:`SessionState`, carried by the platform between turns), and which feedback is sent.

Feedback. The engine keeps the conversation (by ``conversation_id``) and itself logs what happens
*inside* it: "no, the other one" (``reasked``), "the organic one" (``swapped``), "cancel that"
(``removed``). The gateway adds only what the engine cannot see: that the line *stood*. It sends
one ``kept`` for the product in the cart when the shopper confirms, moves on to another product,
or ends the session, and never for a line that was cancelled or removed. So nothing is counted
twice. It is sent under the request id of the answer that opened the line (the id the engine's own
events carry), so training sees one list per request. Unlinked shoppers send no feedback.

Which answers continue a line: an answer to a follow-up is made from the same ranked candidates
as the answer before it, so it always shares a product with what was last said (the current
product or an alternative). An answer sharing none starts a new line. (A new request for the same
thing also shares products and is then taken as the same line: one ``kept`` fewer, never a wrong one.)
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voicecart.gateway.endpoint import Endpoint, EndpointUnavailable
from voicecart.gateway.identity import IdentityError, IdentityStore
from voicecart.schemas import FeedbackEvent, Intent, ResolveRequest, ResolveResponse

log = logging.getLogger("voicecart.gateway")

ANONYMOUS = "anonymous"
"""The customer_id sent for a shopper whose platform account is not linked: popularity answers."""
VERBS = {"add": "add", "remove": "remove", "reorder": "reorder", "ask": "do you have"}
"""How a platform's intent/tag plus a product slot becomes an utterance the parser reads."""


class Action(str, Enum):
    resolve = "resolve"
    """A shopping request, or free text the engine may take as a follow-up of the line."""
    follow_up = "follow_up"
    """Explicitly about the current line ("no, the other one", "make it two", "cancel that")."""
    confirm = "confirm"
    end = "end"
    launch = "launch"
    help = "help"
    unknown = "unknown"
    """Something this gateway does not handle (an intent outside the interaction model)."""


class CartLine(BaseModel):
    """The product the session last put in (or took out of) the cart, as the shopper heard it."""

    model_config = ConfigDict(extra="ignore")

    request_id: str = Field(min_length=1, max_length=128)
    """The request whose answer opened this line (follow-ups keep it)."""
    product_id: str = Field(min_length=1, max_length=128)
    title: str | None = None
    quantity: float = 1.0
    unit: str | None = None
    heard: list[str] = Field(default_factory=list, max_length=8)
    """Product ids of the last answer: the product and its alternatives."""
    at: float
    """Unix time of the last answer about this line."""
    standing: bool = True
    """In the cart; False once cancelled or removed."""
    kept: bool = False
    """A ``kept`` event was sent for ``product_id``."""


class SessionState(BaseModel):
    """What the platform carries between turns (Alexa session attributes, Dialogflow parameters)."""

    model_config = ConfigDict(extra="ignore")

    line: CartLine | None = None
    hinted: bool = False
    """The account-linking hint was spoken in this session."""


@dataclass(frozen=True)
class VoiceTurn:
    platform: str
    session: str
    """The platform's session id (the engine's conversation is derived from it)."""
    users: tuple[str, ...]
    """The platform's names for the shopper, most specific first (linked token, then user id)."""
    action: Action
    utterance: str | None = None
    locale: str | None = None
    state: Any = None
    """The state the platform echoed back, unvalidated."""


@dataclass
class Reply:
    speech: str
    state: SessionState | None
    """None: forget the session's state."""
    reprompt: str | None = None
    end_session: bool = False
    needs_confirmation: bool = False
    link_hint: bool = False
    answer: ResolveResponse | None = None
    outcome: str = "answered"
    """For metrics: answered, apology, stale, unavailable, ended."""
    feedback: list[FeedbackEvent] = field(default_factory=list)


WELCOME = "Welcome to {name}. What would you like to add to your cart?"
HELP = ("You can say: add milk, add two loaves of bread, or remove the yogurt. After I answer, say "
        "no, the other one, or make it three, or cancel that. What would you like?")
ASK_AGAIN = "What would you like to add?"
GOODBYE = "Okay, your cart is saved. Goodbye."
LOST_TRACK = "Sorry, I've lost track of which item we were talking about. What would you like to add?"
UNAVAILABLE = "Sorry, I can't reach the shop right now. Please try again in a moment."
UNKNOWN = "Sorry, I can't do that here. You can say: add milk, or: help."
EMPTY = "Sorry, I didn't catch which product you mean. What would you like to add?"


class Conversations:
    """Runs one voice turn: identity, the endpoint call, the reply, the session state, the feedback."""

    def __init__(self, endpoint: Endpoint, identity: IdentityStore, platform_session_ttl_s: float,
                 skill_name: str = "the shop") -> None:
        self.endpoint = endpoint
        self.identity = identity
        self.ttl_s = platform_session_ttl_s
        self.skill_name = skill_name

    async def handle(self, turn: VoiceTurn, now: float | None = None) -> Reply:
        now = time.time() if now is None else now
        state, stale = self.session_state(turn.state, now)
        customer, linked = await self.customer(turn)
        reply = await self._dispatch(turn, state, stale, customer, linked, now)
        if linked is False and reply.state is not None and not reply.state.hinted and not reply.end_session:
            reply.link_hint = True
            reply.state = reply.state.model_copy(update={"hinted": True})
        for event in reply.feedback:
            self.endpoint.send_feedback(event)
        return reply

    async def _dispatch(self, turn: VoiceTurn, state: SessionState, stale: bool, customer: str,
                        linked: bool | None, now: float) -> Reply:
        if turn.action is Action.launch:
            return Reply(WELCOME.format(name=self.skill_name), state, reprompt=ASK_AGAIN)
        if turn.action is Action.help:
            return Reply(HELP, state, reprompt=ASK_AGAIN)
        if turn.action is Action.unknown:
            return Reply(UNKNOWN, state, reprompt=ASK_AGAIN, outcome="apology")
        if turn.action is Action.end:
            kept = self._kept(state.line, customer, linked, now)
            return Reply(GOODBYE, None, end_session=True, outcome="ended", feedback=kept)
        line = state.line
        if turn.action in (Action.confirm, Action.follow_up) and (line is None or stale):
            return Reply(LOST_TRACK, state.model_copy(update={"line": None}), reprompt=ASK_AGAIN,
                         outcome="stale" if stale else "apology")
        if turn.action is Action.confirm:
            assert line is not None
            kept = self._kept(line, customer, linked, now)
            line = line.model_copy(update={"kept": line.kept or bool(kept), "at": now})
            speech = (f"Great, {_said(line)} stays in your cart. Anything else?" if line.standing
                      else "Okay. Anything else?")
            return Reply(speech, state.model_copy(update={"line": line}), feedback=kept)
        if not (turn.utterance or "").strip():
            return Reply(EMPTY, state, reprompt=ASK_AGAIN, outcome="apology")
        try:
            request = ResolveRequest(customer_id=customer, utterance=turn.utterance[:1000], locale=turn.locale,
                                     request_id=uuid.uuid4().hex, conversation_id=conversation_id(turn))
        except ValidationError as exc:  # e.g. control characters in the transcript, an odd locale
            log.warning("%s turn not sendable: %s", turn.platform, exc.errors()[0]["loc"])
            return Reply(EMPTY, state, reprompt=ASK_AGAIN, outcome="apology")
        try:
            answer = await self.endpoint.resolve(request)
        except EndpointUnavailable as exc:
            log.warning("%s turn unanswered: %s", turn.platform, exc)
            return Reply(UNAVAILABLE, state, reprompt=ASK_AGAIN, outcome="unavailable")
        return self._answered(turn, state, None if stale else line, answer, customer, linked, now)

    def _answered(self, turn: VoiceTurn, state: SessionState, line: CartLine | None, answer: ResolveResponse,
                  customer: str, linked: bool | None, now: float) -> Reply:
        if answer.product is None:  # the engine's own apology ("Sorry, I couldn't find ...")
            return Reply(answer.confirmation, state, reprompt=ASK_AGAIN, answer=answer, outcome="apology")
        heard = [answer.product.id, *(a.id for a in answer.alternatives)][:8]
        continues = line is not None and bool(set(heard) & {line.product_id, *line.heard})
        if turn.action is Action.follow_up and not continues:
            return Reply(LOST_TRACK, state.model_copy(update={"line": None}), reprompt=ASK_AGAIN,
                         answer=answer, outcome="stale")
        feedback: list[FeedbackEvent] = []
        new_line = line  # an ask, or removing something else, leaves the line as it is
        if answer.intent in (Intent.add, Intent.reorder) or (continues and answer.intent is Intent.remove):
            if line is not None and not continues:
                feedback = self._kept(line, customer, linked, now)  # a new line: the previous one stood
            same = continues and line is not None and line.product_id == answer.product.id
            new_line = CartLine(
                request_id=line.request_id if continues and line is not None else answer.request_id,
                product_id=answer.product.id, title=answer.product.title, quantity=answer.quantity,
                unit=answer.unit, heard=heard, at=now, standing=answer.intent is not Intent.remove,
                kept=bool(same and line is not None and line.kept))
        confirm = new_line is not None and new_line.standing and answer.intent in (Intent.add, Intent.reorder) \
            and needs_confirmation(answer)
        speech = answer.confirmation + (" Is that the one you want?" if confirm else " Anything else?")
        reprompt = (f"Should I keep {_said(new_line)} in your cart? You can say yes, or: no, the other one."
                    if confirm and new_line is not None else None)
        return Reply(speech, state.model_copy(update={"line": new_line}), reprompt=reprompt,
                     needs_confirmation=confirm, answer=answer, feedback=feedback)

    def _kept(self, line: CartLine | None, customer: str, linked: bool | None, now: float) -> list[FeedbackEvent]:
        if line is None or not line.standing or line.kept or linked is not True:
            return []
        digest = hashlib.sha256(line.product_id.encode()).hexdigest()[:16]
        return [FeedbackEvent(event_id=f"gw-{line.request_id[:80]}-kept-{digest}", request_id=line.request_id,
                              customer_id=customer, product_id=line.product_id, kind="kept",
                              timestamp=datetime.fromtimestamp(now, tz=timezone.utc))]

    def session_state(self, raw: Any, now: float) -> tuple[SessionState, bool]:
        """(state, stale): a line older than the TTL, or state that does not parse, is stale and dropped."""
        if raw is None:
            return SessionState(), False
        try:
            state = SessionState.model_validate(raw)
        except ValidationError as exc:
            log.warning("session state unreadable, starting over: %s", exc.errors()[0]["loc"])
            return SessionState(), True
        if state.line is not None and not (0 <= now - state.line.at <= self.ttl_s):
            return state.model_copy(update={"line": None}), True
        return state, False

    async def customer(self, turn: VoiceTurn) -> tuple[str, bool | None]:
        """(customer_id, linked): linked is None when the identity store could not be read."""
        try:
            for user in turn.users:
                if user and (customer := await self.identity.customer_for(turn.platform, user)):
                    return customer, True
        except IdentityError as exc:
            log.warning("identity lookup failed, answering without personalization: %s", exc)
            return ANONYMOUS, None
        return ANONYMOUS, False


def conversation_id(turn: VoiceTurn) -> str:
    """The engine's conversation for this platform session (a digest: session ids can be long)."""
    return f"{turn.platform}-{hashlib.sha256(turn.session.encode()).hexdigest()[:40]}"


def needs_confirmation(answer: ResolveResponse) -> bool:
    """Ask back when the answer is not personal or took a fallback: the shopper should hear a question."""
    return not answer.personalized or bool(answer.fallbacks)


def utterance_from_slots(action: str, product: str | None, quantity: str | float | None) -> str | None:
    """``add`` + "milk" + 2 -> "add 2 milk"; None when there is no product."""
    product = (product or "").strip()
    if not product:
        return None
    amount = ""
    if quantity not in (None, ""):
        try:
            q = float(quantity)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            q = None
        if q is not None and q > 0:
            amount = f"{q:g} "
    return f"{VERBS.get(action, 'add')} {amount}{product}"


def _said(line: CartLine | None) -> str:
    if line is None:
        return "that"
    return line.title or f"product {line.product_id}"
