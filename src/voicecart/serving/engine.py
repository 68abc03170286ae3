"""The resolution engine: parse -> candidates -> profile -> features -> rank -> answer.

Each step is a small function with typed input and output; :class:`ResolutionEngine` runs them
under a per-request deadline and answers anyway when a dependency fails (less personal, and it
says so in ``personalized``/``fallbacks``). The KServe classes in :mod:`voicecart.serving.server`
only adapt this object to the protocol; tests and the benchmark use it in process as well.

What the engine owns besides the steps:

- **dependency health**: a :class:`CircuitBreaker` per dependency (profile store, conversation Redis,
  Triton). One that fails ``failures`` times in a row is *open*: requests skip it at once and answer
  without it. While open, one trial call at a time runs in a background thread every ``retry_s`` (the
  half-open state); it may reconnect first (a store whose connection died never heals by itself). Its
  success closes the breaker. Requests never wait for a trial. :class:`Health` is the readiness report.
- **conversations**: the :class:`Turn` kept per ``conversation_id`` so follow-ups resolve (what they say
  is read by ``ranking.parse.follow_up``), in a :class:`ConversationStore`: :class:`MemoryConversationStore`
  here (TTL'd, bounded, one process), or ``conversation_redis.RedisConversationStore`` (shared by replicas),
  chosen by ``serving.conversations.type`` through :func:`conversation_store`.
- **canary arms**: which customers the canary answers, and what each arm answered.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Protocol

import numpy as np
import orjson

from voicecart.config import ServingSettings
from voicecart.features.online import PROBE_CUSTOMER
from voicecart.ranking.catalog import Candidates, Catalog
from voicecart.ranking.features import Featurizer
from voicecart.ranking.parse import (FollowUp, FollowUpKind, amount, confirmation, follow_up, parse, size_of,
                                     spoken_name, times_bought)
from voicecart.schemas import (CustomerProfile, FeedbackEvent, Intent, ParsedUtterance, ProductRef,
                               ResolveRequest, ResolveResponse)
from voicecart.serving import metrics
from voicecart.serving.errors import ServingError
from voicecart.serving.predictor import Scorer

log = logging.getLogger("voicecart.serving.requests")
health_log = logging.getLogger("voicecart.serving.health")

N_ALTERNATIVES = 3
PROFILE_SHARE = 0.6
"""The share of what is left of the deadline, once the candidates are ready, that the profile read may take (the
rest is for features and the ranker)."""



class ProfileSource(Protocol):
    def get(self, customer_id: str) -> CustomerProfile | None:
        """ONE online-store read; raises when the store is down."""
        ...


@dataclass(frozen=True)
class ServingModel:
    """One loaded champion: swapped as a whole on hot reload, so a request sees one version."""

    version: str
    catalog: Catalog
    scorer: Scorer
    featurize: Featurizer
    now: float
    """The moment features are computed at (epoch s): that of the product statistics served, as in training."""


@dataclass
class Pending:
    """A new request waiting for its profile read: what :meth:`ResolutionEngine.begin` computed, for
    :meth:`ResolutionEngine.finish`. Whoever holds it waits for ``read`` (at most :meth:`wait_s`), by any means
    that blocks nothing else (the server awaits it on the event loop), then calls ``finish``."""

    request: ResolveRequest
    model: ServingModel
    arm: str
    request_id: str
    conversation_id: str
    start: float
    received: float
    deadline: float
    fallbacks: list[str]
    parsed: ParsedUtterance
    cands: Candidates
    read: Future
    wait_until: float
    """perf_counter time by which the read must be back (:data:`PROFILE_SHARE` of what was left of the deadline
    after the candidates)."""

    def wait_s(self) -> float:
        return max(0.0, self.wait_until - time.perf_counter())

    def wait(self) -> None:
        """Block this thread until the read is back or its time is up (the in-process callers' way)."""
        wait_futures([self.read], timeout=self.wait_s())


@dataclass
class Ranked:
    """Candidates in answer order with the scores that ordered them."""

    product: np.ndarray  # [n] int64 catalogue index, best first
    score: np.ndarray  # [n] float32
    personalized: bool


# -- the steps ------------------------------------------------------------------------------------

def parse_step(text: str) -> ParsedUtterance:
    return parse(text)


def candidates_step(model: ServingModel, parsed: ParsedUtterance, k: int) -> Candidates:
    if parsed.intent not in (Intent.add, Intent.remove, Intent.reorder, Intent.ask) or not parsed.mention:
        return Candidates.empty()
    return model.catalog.candidates(parsed, k=k)


def popularity_step(model: ServingModel, cands: Candidates) -> Ranked:
    """The non-personal answer: text match first, then how often the product sold."""
    score = model.catalog.stats.popularity[cands.product].astype(np.float64) + cands.text_score * 1e9
    order = np.argsort(-score, kind="stable")
    return Ranked(cands.product[order], score[order].astype(np.float32), personalized=False)


def features_step(model: ServingModel, profile: CustomerProfile, cands: Candidates) -> dict[str, np.ndarray]:
    return model.featurize(profile, cands, model.catalog, model.now)


def rank_step(model: ServingModel, cands: Candidates, feeds: dict[str, np.ndarray],
              personalized: bool = True, predictor: CircuitBreaker | None = None) -> tuple[Ranked, str | None]:
    """Score with the model's scorer; a remote predictor (one that can fall back to the in-process one)
    whose breaker is open is skipped for the local one."""
    with_source = getattr(model.scorer, "score_with_source", None)
    if with_source is not None:
        if predictor is not None and not predictor.allow():
            scores, fallback = model.scorer.fallback.score(feeds), "predictor_unavailable"
        else:
            scores, fallback = with_source(feeds)
            if predictor is not None:
                predictor.failure("triton call failed") if fallback else predictor.success()
    else:
        scores, fallback = model.scorer.score(feeds), None
    scores = np.asarray(scores, np.float32).reshape(-1)[: len(cands)]
    order = np.argsort(-scores, kind="stable")
    return Ranked(cands.product[order], scores[order], personalized=personalized), fallback


def answer_step(model: ServingModel, request_id: str, parsed: ParsedUtterance, ranked: Ranked, position: int = 0,
                fallbacks: list[str] | None = None, reason: str | None = None,
                profile: CustomerProfile | None = None) -> ResolveResponse:
    shown = min(len(ranked.product), max(position, N_ALTERNATIVES) + 1)  # the answer and its alternatives
    refs = [_ref(model.catalog, int(p), float(s)) for p, s in zip(ranked.product[:shown], ranked.score[:shown])]
    product = refs[position] if position < len(refs) else None
    alternatives = [r for i, r in enumerate(refs) if i != position][:N_ALTERNATIVES]
    name = None if product is None else spoken_name(model.catalog, int(ranked.product[position]))
    speech = confirmation(parsed, name, times_bought(profile, product.id if product else None))
    return ResolveResponse(
        request_id=request_id, intent=parsed.intent, quantity=parsed.quantity, unit=parsed.unit,
        product=product, alternatives=alternatives, confirmation=speech,
        personalized=ranked.personalized and product is not None, model_version=model.version,
        latency_ms=0.0, fallbacks=list(fallbacks or []), reason=reason if product is None else None)


def _ref(catalog: Catalog, index: int, score: float | None) -> ProductRef:
    return ProductRef(id=str(catalog.product_ids[index]), title=catalog.titles[index], score=score)


def _new_id() -> str:
    """128 random bits as 32 hex digits (what ``uuid4().hex`` gave, without building a UUID object)."""
    return os.urandom(16).hex()


def _say(*parts: str) -> str:
    return " ".join(p for p in parts if p)


# -- dependency health ------------------------------------------------------------------------------

class State(str, Enum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    """closed --(``failures`` in a row)--> open --(``retry_s``)--> half-open trial --> closed | open."""

    def __init__(self, name: str, trial: Callable[[], object], failures: int = 3, retry_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.trial = trial
        self.failures = failures
        self.retry_s = retry_s
        self.clock = clock
        self.state = State.closed
        self.consecutive = 0
        self.last_error: str | None = None
        self.opened_at: float | None = None
        self._lock = threading.Lock()
        metrics.set_breaker(name, self.state.value)

    def allow(self) -> bool:
        """May a request call the dependency now? When open and a trial is due, start one (in the background)."""
        if self.state is State.closed:
            return True
        start = False
        with self._lock:
            if self.state is State.open and self.clock() - (self.opened_at or 0.0) >= self.retry_s:
                self._set(State.half_open)
                start = True
        if start:
            threading.Thread(target=self._run_trial, name=f"{self.name}-trial", daemon=True).start()
        return False

    def success(self) -> None:
        if self.consecutive or self.state is not State.closed:
            with self._lock:
                self.consecutive = 0
                if self.state is not State.closed:
                    health_log.warning("%s recovered: breaker closed", self.name)
                    self._set(State.closed)

    def failure(self, error: str) -> None:
        with self._lock:
            self.consecutive += 1
            self.last_error = error
            if self.state is State.closed and self.consecutive >= self.failures:
                health_log.warning("%s failed %d times in a row (%s): breaker open, retrying every %.1fs",
                                   self.name, self.consecutive, error, self.retry_s)
                self.opened_at = self.clock()
                self._set(State.open)

    def _run_trial(self) -> None:
        try:
            self.trial()
        except Exception as exc:  # noqa: BLE001 - still down: stay open, try again later
            with self._lock:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self.opened_at = self.clock()
                self._set(State.open)
            return
        self.success()

    def _set(self, state: State) -> None:
        self.state = state
        metrics.set_breaker(self.name, state.value)

    def report(self) -> dict:
        out: dict = {"state": self.state.value}
        if self.state is not State.closed:
            out["error"] = self.last_error
            opened = self.clock() if self.opened_at is None else self.opened_at
            out["since_s"] = round(self.clock() - opened, 3)
        return out


class Health:
    """The breakers of one server process, read by the readiness route (no dependency is called)."""

    def __init__(self) -> None:
        self.breakers: dict[str, CircuitBreaker] = {}

    def add(self, breaker: CircuitBreaker) -> CircuitBreaker:
        self.breakers[breaker.name] = breaker
        return breaker

    def degraded(self) -> list[str]:
        return sorted(name for name, b in self.breakers.items() if b.state is not State.closed)

    def report(self) -> dict:
        return {name: b.report() for name, b in sorted(self.breakers.items())}


# -- conversations ----------------------------------------------------------------------------------

@dataclass
class Turn:
    """What a conversation remembers: the last answer's ranked candidates and where we are in them."""

    customer_id: str
    request_id: str
    product_ids: list[str]
    """Candidates in ranked order (best first)."""
    titles: list[str | None]
    scores: list[float]
    rel_price: list[float]
    position: int
    """Index of the product currently in the cart for this turn."""
    quantity: float
    unit: str | None
    intent: Any
    personalized: bool
    cancelled: bool = False
    expires_at: float = 0.0
    rejected: set[int] = field(default_factory=set)

    @property
    def product_id(self) -> str | None:
        return self.product_ids[self.position] if 0 <= self.position < len(self.product_ids) else None

    def next_position(self) -> int | None:
        """The best-ranked candidate not yet rejected (after the current one)."""
        for i in range(len(self.product_ids)):
            if i != self.position and i not in self.rejected:
                return i
        return None

    def constrained_position(self, constraint: str) -> int | None:
        """The best-ranked candidate (not the current one) that satisfies the constraint."""
        others = [i for i in range(len(self.product_ids)) if i != self.position and i not in self.rejected]
        if constraint in ("bigger", "smaller"):
            here = size_of(self.titles[self.position])
            sign = 1 if constraint == "bigger" else -1
            for i in others:
                there = size_of(self.titles[i])
                if here and there and here[0] == there[0] and sign * (there[1] - here[1]) > 0:
                    return i
            return None
        if constraint == "cheaper":
            price = np.asarray(self.rel_price, dtype=np.float64)
            for i in others:
                if price[i] < price[self.position] - 1e-6:
                    return i
            return None
        word = re.compile(rf"\b{re.escape(constraint)}\b")
        for i in others:
            if self.titles[i] and word.search(self.titles[i].lower()):
                return i
        return None

    def to_dict(self) -> dict:
        """JSON-ready (the Redis backend stores it); :meth:`from_dict` reads it back."""
        return {"customer_id": self.customer_id, "request_id": self.request_id, "product_ids": self.product_ids,
                "titles": self.titles, "scores": self.scores, "rel_price": self.rel_price,
                "position": self.position, "quantity": self.quantity, "unit": self.unit,
                "intent": getattr(self.intent, "value", self.intent), "personalized": self.personalized,
                "cancelled": self.cancelled, "rejected": sorted(self.rejected)}

    @classmethod
    def from_dict(cls, data: dict) -> "Turn":
        return cls(**{**data, "intent": Intent(data["intent"]), "rejected": set(data["rejected"])})


class ConversationUnavailable(ServingError):
    """The conversation store did not answer (the turn is answered as a new request)."""


class ConversationStore(Protocol):
    """conversation_id -> the last Turn, for ``ttl_s`` seconds after it was written."""

    def get(self, conversation_id: str, customer_id: str) -> Turn | None:
        """The turn, or None (unknown, expired, or another customer's); raises ConversationUnavailable."""
        ...

    def put(self, conversation_id: str, turn: Turn) -> None:
        ...


class MemoryConversationStore:
    """conversation_id -> Turn, with a TTL (seconds) and a bound on how many are kept (LRU)."""

    def __init__(self, ttl_s: float = 300.0, max_conversations: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_conversations = max_conversations
        self._turns: OrderedDict[str, Turn] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conversation_id: str, customer_id: str, now: float | None = None) -> Turn | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            turn = self._turns.get(conversation_id)
            if turn is None:
                return None
            if turn.expires_at < now or turn.customer_id != customer_id:
                if turn.expires_at < now:
                    del self._turns[conversation_id]
                return None
            self._turns.move_to_end(conversation_id)
            return turn

    def put(self, conversation_id: str, turn: Turn, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        turn.expires_at = now + self.ttl_s
        with self._lock:
            self._turns[conversation_id] = turn
            self._turns.move_to_end(conversation_id)
            while len(self._turns) > self.max_conversations:
                self._turns.popitem(last=False)

    def __len__(self) -> int:
        return len(self._turns)


def conversation_store(settings: Any, redis_url: str | None, health: Any = None) -> ConversationStore:
    """The store ``settings.conversations`` names (ServingSettings); ``redis_url`` is the online store's
    (None when the online store is not Redis: the conversation store then needs its own ``url``)."""
    conf = settings.conversations
    if conf.type == "redis":
        from voicecart.serving.conversation_redis import RedisConversationStore

        if not (conf.url or redis_url):
            raise ValueError("serving.conversations.type is redis but neither serving.conversations.url nor a Redis "
                             "online store (features.online) names one")
        return RedisConversationStore(conf.url or redis_url, settings.conversation_ttl_s, conf.key_prefix,
                                      conf.timeout_s, settings=settings, health=health)
    return MemoryConversationStore(settings.conversation_ttl_s, conf.max_conversations)


# -- canary arms -----------------------------------------------------------------------------------

ERROR_FALLBACKS = ("ranker_failed", "deadline")
"""Fallbacks that count as an arm's errors (the ranker failed, or the answer missed its deadline)."""
KEPT_KINDS = ("kept", "bought")


def arm_of(customer_id: str, percent: int) -> str:
    """``canary`` for ``percent`` % of customers, stably (the same customer always lands on the same arm)."""
    import zlib

    return "canary" if percent > 0 and zlib.crc32(customer_id.encode()) % 100 < percent else "champion"


class ArmCounts:
    """What one arm answered since the split started: the sequential test's inputs (rollout.decision)."""

    def __init__(self) -> None:
        self.requests = self.errors = self.slow = self.feedback = self.kept = 0
        self._lock = threading.Lock()

    def answer(self, response: ResolveResponse, deadline_ms: float) -> None:
        with self._lock:
            self.requests += 1
            self.errors += any(f in ERROR_FALLBACKS for f in response.fallbacks)
            self.slow += response.latency_ms > deadline_ms

    def event(self, kind: str) -> None:
        with self._lock:
            self.feedback += 1
            self.kept += kind in KEPT_KINDS

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "errors": self.errors, "slow": self.slow, "feedback": self.feedback,
                "kept": self.kept}


def observe_answer(latency_s: float, personalized: bool, fallbacks: list[str]) -> None:
    """One answer in the Prometheus metrics (``serving.metrics``): the engine's latency, personal or not, its
    fallbacks."""
    metrics.RESOLVE_LATENCY.observe(latency_s)
    metrics.resolves(personalized).inc()
    for reason in fallbacks:
        metrics.FALLBACKS.labels(reason=reason).inc()


# -- the engine -----------------------------------------------------------------------------------

class ResolutionEngine:
    """Runs the steps for one request under a deadline; holds the current model and conversations."""

    def __init__(self, model: ServingModel, profiles: ProfileSource | None, settings: ServingSettings,
                 max_candidates: int = 100, on_feedback: Callable[[FeedbackEvent], object] | None = None,
                 conversations: ConversationStore | None = None, health: Health | None = None) -> None:
        self._model = model
        self._canary: ServingModel | None = None
        self.canary_percent = 0
        self.canary_since = time.time()
        self.arms = {"champion": ArmCounts(), "canary": ArmCounts()}
        self.profiles = profiles
        self.settings = settings
        self.max_candidates = max_candidates
        self.health = health or Health()
        self.conversations = (conversations if conversations is not None
                              else MemoryConversationStore(settings.conversation_ttl_s))
        self.on_feedback = on_feedback
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="profile-read")
        self._swap = threading.Lock()
        self.profile_breaker = None
        if profiles is not None:
            trial = getattr(profiles, "probe", None) or (lambda: profiles.get(PROBE_CUSTOMER))
            self.profile_breaker = self.health.add(CircuitBreaker(
                "profiles", trial, settings.breaker_failures, settings.breaker_retry_s))
        self.predictor_breaker = self.health.add(CircuitBreaker(
            "predictor", self._predictor_trial, settings.breaker_failures, settings.breaker_retry_s))
        metrics.set_model_version(model.version)

    def _predictor_trial(self) -> None:
        scorer = self._model.scorer
        ready = getattr(getattr(scorer, "primary", None), "ready", None)
        if ready is not None and not ready():
            raise ConnectionError("remote predictor not ready")

    @property
    def model(self) -> ServingModel:
        return self._model

    @property
    def canary(self) -> ServingModel | None:
        return self._canary

    def swap(self, model: ServingModel, canary: ServingModel | None = None, percent: int = 0) -> str:
        """Hot reload: requests already running finish on the old model(s), new ones get these: the champion,
        and a canary taking ``percent`` % of the customers beside it (counted per arm from now on)."""
        with self._swap:
            previous, self._model = self._model, model
            split = (None if canary is None else canary.version, percent if canary is not None else 0)
            if split != (None if self._canary is None else self._canary.version, self.canary_percent):
                self.arms, self.canary_since = {"champion": ArmCounts(), "canary": ArmCounts()}, time.time()
            self._canary, self.canary_percent = canary, split[1]
        metrics.set_model_version(model.version, previous.version)
        return previous.version

    def arm(self, customer_id: str) -> tuple[str, ServingModel]:
        """The arm that answers this customer, and its model."""
        canary = self._canary
        if canary is not None and arm_of(customer_id, self.canary_percent) == "canary":
            return "canary", canary
        return "champion", self._model

    def feedback_arm(self, event: FeedbackEvent) -> FeedbackEvent:
        """The event with its arm and model version (the answering arm's, when the client did not say), counted."""
        arm, model = self.arm(event.customer_id)
        if event.arm is None or event.model_version is None:
            event = event.model_copy(update={"arm": event.arm or arm, "model_version": event.model_version or model.version})
        self.arms[event.arm].event(event.kind)
        return event

    def warm_up(self, utterances: tuple[str, ...] = ("add milk", "add two bread", "add 100205")) -> None:
        """Run the request path once per utterance (ONNX Runtime and BM25 allocate on first use)."""
        for text in utterances:
            parsed = parse_step(text)
            cands = candidates_step(self._model, parsed, self.max_candidates)
            if len(cands):
                rank_step(self._model, cands, features_step(self._model, CustomerProfile(customer_id="warm-up"), cands))

    # -- request path --
    def resolve(self, request: ResolveRequest, received_at: float | None = None) -> ResolveResponse:
        """Answer one request, on this thread. ``received_at`` (``time.perf_counter()`` when the server received
        it) makes ``latency_ms`` and the deadline count the wait for a worker thread too."""
        step = self.begin(request, received_at)
        if isinstance(step, Pending):
            step.wait()
            step = self.finish(step)
        return step

    def begin(self, request: ResolveRequest, received_at: float | None = None) -> ResolveResponse | Pending:
        """Everything of a request up to its profile: the answer, or a :class:`Pending` when the profile read
        has not come back within ``settings.profile_grace_ms`` (then wait for it and call :meth:`finish`)."""
        start = time.perf_counter()
        received = start if received_at is None else min(received_at, start)
        deadline = received + self.settings.deadline_ms / 1000
        arm, model = self.arm(request.customer_id)  # one version for the whole request
        request_id = request.request_id or _new_id()
        conversation_id = request.conversation_id or _new_id()
        fallbacks: list[str] = []
        turn = self._turn_of(conversation_id, request.customer_id, fallbacks) if request.conversation_id else None
        followed = follow_up(request.utterance) if turn is not None else None
        if followed is not None and turn is not None:
            response = self._follow_up(model, request_id, request.customer_id, turn, followed)
            self._keep(conversation_id, turn, response.fallbacks)
            return self._answered(request, response, arm, conversation_id, start, received, fallbacks)
        profile_read = self._read_profile(request.customer_id)  # overlaps parse + candidates
        parsed = parse_step(request.utterance)
        cands = candidates_step(model, parsed, self.max_candidates)
        if len(cands) == 0:
            if profile_read is not None:
                profile_read.cancel()
            why = "not_understood" if parsed.intent is Intent.unknown else "no_candidates"
            response = answer_step(model, request_id, parsed, Ranked(cands.product, cands.text_score, False),
                                   fallbacks=[why], reason=parsed.reason or why)
            return self._answered(request, response, arm, conversation_id, start, received, fallbacks)
        now = time.perf_counter()
        pending = Pending(request, model, arm, request_id, conversation_id, start, received, deadline, fallbacks,
                          parsed, cands, profile_read, now + max(0.0, deadline - now) * PROFILE_SHARE)
        if profile_read is not None:
            if not profile_read.done():
                wait_futures([profile_read], timeout=min(self.settings.profile_grace_ms / 1000, pending.wait_s()))
            if not profile_read.done():
                return pending
        return self.finish(pending)

    def finish(self, pending: Pending) -> ResolveResponse:
        """The rest of a request :meth:`begin` left pending: its profile (a read not back by now timed out),
        features, ranker, answer."""
        model, cands, parsed = pending.model, pending.cands, pending.parsed
        deadline = pending.deadline
        fallbacks: list[str] = []
        ranked = popularity_step(model, cands)  # the best answer so far
        profile = self._await_profile(pending.read, fallbacks)
        if profile is not None and time.perf_counter() < deadline:
            try:
                feeds = features_step(model, profile, cands)
                personal, fallback = rank_step(model, cands, feeds, personalized=profile.has_history,
                                               predictor=self.predictor_breaker)
            except Exception as exc:  # noqa: BLE001 - a failing ranker must not fail the request
                log.warning("ranker failed, answering by popularity: %s", type(exc).__name__)
                fallbacks.append("ranker_failed")
            else:
                if fallback:
                    fallbacks.append(fallback)
                if time.perf_counter() <= deadline:
                    ranked = personal
                else:
                    fallbacks.append("deadline")
        elif profile is not None:
            fallbacks.append("deadline")
        response = answer_step(model, pending.request_id, parsed, ranked, fallbacks=fallbacks, profile=profile)
        turn = self._turn(model, pending.request.customer_id, pending.request_id, parsed, ranked)
        if turn is not None:
            self._keep(pending.conversation_id, turn, response.fallbacks)
        return self._answered(pending.request, response, pending.arm, pending.conversation_id, pending.start,
                              pending.received, pending.fallbacks)

    def _answered(self, request: ResolveRequest, response: ResolveResponse, arm: str, conversation_id: str,
                  start: float, received: float, fallbacks: list[str]) -> ResolveResponse:
        """The response as sent: its latency from receipt, conversation and arm; counted and logged."""
        done = time.perf_counter()
        response = response.model_copy(update={"latency_ms": round((done - received) * 1000, 3),
                                               "conversation_id": conversation_id, "arm": arm,
                                               "fallbacks": fallbacks + [f for f in response.fallbacks
                                                                         if f not in fallbacks]})
        observe_answer(done - start, response.personalized, response.fallbacks)
        self.arms[arm].answer(response, self.settings.deadline_ms)
        self._log(request, response)
        return response

    def _turn_of(self, conversation_id: str, customer_id: str, fallbacks: list[str]) -> Turn | None:
        try:
            return self.conversations.get(conversation_id, customer_id)
        except ConversationUnavailable as exc:
            log.warning("conversation read failed, answering as a new request: %s", exc)
            fallbacks.append("conversation_unavailable")
            return None

    def _keep(self, conversation_id: str, turn: Turn, fallbacks: list[str]) -> None:
        try:
            self.conversations.put(conversation_id, turn)
        except ConversationUnavailable as exc:
            log.warning("conversation write failed: %s", exc)
            if "conversation_unavailable" not in fallbacks:
                fallbacks.append("conversation_unavailable")

    def _read_profile(self, customer_id: str) -> Future | None:
        """Start the ONE profile read (None: no store, or its breaker is open)."""
        if self.profiles is None or (self.profile_breaker is not None and not self.profile_breaker.allow()):
            return None
        return self._pool.submit(self.profiles.get, customer_id)

    def _await_profile(self, read: Future | None, fallbacks: list[str]) -> CustomerProfile | None:
        """The read's profile; one not back by now (its time, :attr:`Pending.wait_until`, is up) timed out."""
        if read is None:
            fallbacks.append("profile_unavailable")
            return None
        breaker = self.profile_breaker
        try:
            profile = read.result(timeout=0)
        except FutureTimeout:
            read.cancel()
            if breaker is not None:
                breaker.failure(f"read slower than its share of the deadline "
                                f"({self.settings.deadline_ms * PROFILE_SHARE:.0f} ms at most)")
            fallbacks.append("profile_timeout")
            return None
        except Exception as exc:  # noqa: BLE001 - store down: answer by popularity
            log.warning("profile read failed: %s", type(exc).__name__)
            if breaker is not None:
                breaker.failure(f"{type(exc).__name__}: {exc}"[:300])
            fallbacks.append("profile_unavailable")
            return None
        if breaker is not None:
            breaker.success()
        if profile is None:
            fallbacks.append("no_profile")
        return profile

    @staticmethod
    def _turn(model: ServingModel, customer_id: str, request_id: str, parsed: ParsedUtterance,
              ranked: Ranked) -> Turn | None:
        if not len(ranked.product) or parsed.intent not in (Intent.add, Intent.reorder):
            return None
        idx = ranked.product
        return Turn(customer_id=customer_id, request_id=request_id,
                    product_ids=[str(model.catalog.product_ids[i]) for i in idx],
                    titles=[model.catalog.titles[i] for i in idx], scores=[float(s) for s in ranked.score],
                    rel_price=[float(model.catalog.stats.rel_price[i]) for i in idx], position=0,
                    quantity=parsed.quantity, unit=parsed.unit, intent=parsed.intent,
                    personalized=ranked.personalized)

    # -- follow-ups --
    def _follow_up(self, model: ServingModel, request_id: str, customer_id: str, turn: Turn,
                   follow: FollowUp) -> ResolveResponse:
        before = turn.product_id
        fallbacks: list[str] = []
        if follow.kind is FollowUpKind.cancel:
            turn.cancelled = True
            self._feedback(turn, request_id, "removed", before)
            return self._turn_response(model, turn, request_id, Intent.remove,
                                       f"Okay, I took {self._title(turn)} out of your cart.", fallbacks)
        if follow.kind is FollowUpKind.quantity:
            parsed = parse(follow.quantity_text or "")
            if parsed.quantity != 1.0 or (follow.quantity_text or "").split()[0] in ("one", "1", "a", "an"):
                turn.quantity, turn.unit = parsed.quantity, parsed.unit or turn.unit
            speech = f"Okay, {_say(amount(turn.quantity, turn.unit), self._title(turn))}."
            return self._turn_response(model, turn, request_id, turn.intent, speech, fallbacks)
        if follow.kind is FollowUpKind.next:
            new = turn.next_position()
        else:
            new = turn.constrained_position(follow.constraint or "")
        if new is None:
            what = f"a {follow.constraint} one" if follow.constraint else "another one"
            return self._turn_response(model, turn, request_id, turn.intent,
                                       f"Sorry, I couldn't find {what}. Keeping {self._title(turn)}.",
                                       ["no_alternative"])
        turn.rejected.add(turn.position)
        turn.position = new
        turn.cancelled = False
        kind = "reasked" if follow.kind is FollowUpKind.next else "swapped"
        self._feedback(turn, request_id, kind, before, substitute=turn.product_id)
        speech = f"Okay, {_say(amount(turn.quantity, turn.unit), self._title(turn))} instead."
        return self._turn_response(model, turn, request_id, turn.intent, speech, fallbacks)

    @staticmethod
    def _title(turn: Turn) -> str:
        title = turn.titles[turn.position]
        return title or f"product {turn.product_id}"

    def _turn_response(self, model: ServingModel, turn: Turn, request_id: str, intent: Intent, speech: str,
                       fallbacks: list[str]) -> ResolveResponse:
        refs = [ProductRef(id=p, title=t, score=s) for p, t, s in zip(turn.product_ids, turn.titles, turn.scores)]
        alternatives = [r for i, r in enumerate(refs) if i != turn.position and i not in turn.rejected]
        return ResolveResponse(
            request_id=request_id, intent=intent, quantity=turn.quantity, unit=turn.unit,
            product=refs[turn.position], alternatives=alternatives[:N_ALTERNATIVES], confirmation=speech,
            personalized=turn.personalized, model_version=model.version, latency_ms=0.0, fallbacks=fallbacks)

    def _feedback(self, turn: Turn, request_id: str, kind: str, product_id: str | None,
                  substitute: str | None = None) -> None:
        if self.on_feedback is None or product_id is None:
            return
        event = self.feedback_arm(FeedbackEvent(
            event_id=f"{request_id}:{kind}", request_id=turn.request_id, customer_id=turn.customer_id,
            product_id=product_id, kind=kind, substitute_id=substitute,  # type: ignore[arg-type]
            timestamp=datetime.now(timezone.utc)))
        try:
            self.on_feedback(event)
        except Exception as exc:  # noqa: BLE001 - logging feedback must never fail the answer
            log.warning("could not log conversation feedback: %s", type(exc).__name__)

    # -- logs --
    def _log(self, request: ResolveRequest, response: ResolveResponse) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        record = {"event": "resolve", "request_id": response.request_id, "customer_id": request.customer_id,
                  "intent": response.intent.value, "product_id": response.product.id if response.product else None,
                  "personalized": response.personalized, "fallbacks": response.fallbacks,
                  "model_version": response.model_version, "arm": response.arm, "latency_ms": response.latency_ms}
        if self.settings.log_utterances:
            record["utterance"] = request.utterance
        log.info(orjson.dumps(record).decode())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
