"""The resolution engine in process: personal answers, every fallback, follow-ups, hot swap."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from dataclasses import replace

import numpy as np
import pytest

from voicecart.config import ServingSettings
from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.features.errors import FeatureStoreUnavailable
from voicecart.schemas import CustomerProfile, FeedbackEvent, ResolveRequest
from voicecart.export.model import bundle_from_dataset
from voicecart.serving.bundle import load_serving_model, stats_from_dataset
from voicecart.serving.engine import Pending, ResolutionEngine, ServingModel
from voicecart.serving.feedback import FeedbackIntake, FeedbackLog
from voicecart.serving.local import free_port
from voicecart.serving.predictor_onnx import OnnxScorer
from voicecart.serving.predictor_triton import FallbackScorer, TritonScorer
from voicecart.serving.profiles import StaticProfiles, profiles_from_dataset


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("engine")
    tables, _ = generate(SyntheticConfig(n_customers=200, seed=1))
    write_dataset(tables, root / "data", source="synthetic")
    bundle = bundle_from_dataset(root / "data", root / "bundle", epochs=1)
    model = load_serving_model(bundle, stats=stats_from_dataset(root / "data"))
    profiles = profiles_from_dataset(root / "data")
    customer = next(c for c, p in profiles._profiles.items() if len(p.product_ids) > 5)
    return {"bundle": bundle, "model": model, "profiles": profiles, "customer": customer}


def engine(world: dict, profiles=None, deadline_ms: float = 10_000, model: ServingModel | None = None,
           **kw) -> ResolutionEngine:
    return ResolutionEngine(model or world["model"], world["profiles"] if profiles is None else profiles,
                            ServingSettings(deadline_ms=deadline_ms), **kw)


def ask(e: ResolutionEngine, customer: str, text: str, **kw):
    return e.resolve(ResolveRequest(customer_id=customer, utterance=text, **kw))


class DownStore:
    def get(self, customer_id: str) -> CustomerProfile | None:
        raise FeatureStoreUnavailable("online store unreachable")


class SlowStore:
    def __init__(self, inner, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s

    def get(self, customer_id: str) -> CustomerProfile | None:
        time.sleep(self.delay_s)
        return self.inner.get(customer_id)


def test_known_customer_gets_a_personalized_answer_with_alternatives(world):
    a = ask(engine(world), world["customer"], "add two milk", request_id="r-1")
    assert a.request_id == "r-1" and a.intent.value == "add" and a.quantity == 2.0
    assert a.personalized and a.fallbacks == [] and a.model_version == "v0001"
    assert "milk" in a.product.title and len(a.alternatives) == 3
    assert a.product.id not in {x.id for x in a.alternatives}
    scores = [a.product.score] + [x.score for x in a.alternatives]
    assert scores == sorted(scores, reverse=True)


def test_personal_answers_are_the_bundles_ranker_on_the_one_feature_code(world):
    """The engine ranks a request's candidates by the exported ranker's scores of ``candidate_features``
    of the profile row, at the statistics' moment: nothing else decides the order."""
    from voicecart.ranking import candidate_features, parse

    model = world["model"]
    onnx = OnnxScorer(world["bundle"] / "onnx" / "model.onnx")
    e = engine(world)
    customers = [c for c, p in world["profiles"]._profiles.items() if p.has_history][:5]
    for customer in customers:
        for text in ("add milk", "add two loaves of bread", "add yogurt"):
            ours = ask(e, customer, text)
            cands = model.catalog.candidates(parse(text), k=100)
            x = candidate_features(world["profiles"].get(customer), cands, model.catalog, model.now)
            order = np.argsort(-onnx.score({"features": x[None]})[0], kind="stable")[:4]
            assert ours.personalized
            assert [ours.product.id] + [a.id for a in ours.alternatives] == [
                str(model.catalog.product_ids[cands.product[i]]) for i in order]


@pytest.mark.parametrize("text", ["x" * 290, "tell me a joke", "add 999999", "add qqqqzzzz"])
def test_bad_utterances_are_answers_without_a_product_never_errors(world, text):
    a = ask(engine(world), world["customer"], text)
    assert a.product is None and a.fallbacks and not a.personalized


def test_bundle_statistics_serve_when_no_store_is_configured(world):
    """Without a statistics source the bundle's own (the end of its data window) answer."""
    bare = load_serving_model(world["bundle"])
    assert bare.now == world["model"].now
    np.testing.assert_array_equal(bare.catalog.stats.popularity, world["model"].catalog.stats.popularity)


@pytest.mark.parametrize("profiles, reason", [
    (StaticProfiles([]), "no_profile"),
    (DownStore(), "profile_unavailable"),
])
def test_profile_missing_or_store_down_answers_by_popularity(world, profiles, reason):
    a = ask(engine(world, profiles), world["customer"], "add milk")
    assert a.product is not None and not a.personalized and a.fallbacks == [reason]


def test_slow_store_hits_the_deadline_and_answers_by_popularity(world):
    slow = SlowStore(world["profiles"], delay_s=0.5)
    a = ask(engine(world, slow, deadline_ms=20), world["customer"], "add milk")
    fast = ask(engine(world, StaticProfiles([])), world["customer"], "add milk")
    assert not a.personalized and a.fallbacks == ["profile_timeout"]
    assert a.product.id == fast.product.id  # the popularity answer


def test_a_read_still_out_after_the_grace_is_left_to_the_caller_and_finished_after(world):
    """begin() hands back a Pending (no thread waits on the store); finish() after the read is the same answer
    as resolve() gives; a read still out when its time is up is a popularity answer."""
    e = engine(world, SlowStore(world["profiles"], delay_s=0.2), deadline_ms=10_000)
    request = ResolveRequest(customer_id=world["customer"], utterance="add milk", request_id="r1")
    t0 = time.perf_counter()
    step = e.begin(request)
    assert isinstance(step, Pending) and time.perf_counter() - t0 < 0.15, "begin waited for the slow store"
    step.read.result(timeout=5)
    answer = e.finish(step)
    direct = engine(world).resolve(request)
    assert answer.personalized and answer.product == direct.product and answer.fallbacks == []
    slow = engine(world, SlowStore(world["profiles"], delay_s=0.5), deadline_ms=10_000)
    late = slow.begin(request)
    assert isinstance(late, Pending) and not late.read.done()
    answer = slow.finish(late)  # its caller waited its share already: a read not back is a timeout
    assert answer.product is not None and not answer.personalized and "profile_timeout" in answer.fallbacks


def test_resolve_threads_default_to_one_only_where_nothing_holds_a_thread_waiting():
    assert ServingSettings().threads() == 1  # in-process ranker, memory conversations
    assert ServingSettings(predictor={"type": "triton", "url": "127.0.0.1:8000"}).threads() == 16
    assert ServingSettings(conversations={"type": "redis"}).threads() == 16
    assert ServingSettings(resolve_threads=3).threads() == 3


def test_triton_unreachable_falls_back_to_the_in_process_ranker(world):
    local = OnnxScorer(world["bundle"] / "onnx" / "model.onnx")
    dead = TritonScorer(f"127.0.0.1:{free_port()}", "voicecart", timeout_s=0.2)
    model = replace(world["model"], scorer=FallbackScorer(dead, local))
    a = ask(engine(world, model=model), world["customer"], "add bread")
    b = ask(engine(world), world["customer"], "add bread")
    assert a.personalized and a.fallbacks == ["predictor_unavailable"] and a.product.id == b.product.id


def test_a_failing_ranker_is_a_popularity_answer_not_an_error(world):
    class Broken:
        name = "broken"

        def score(self, feeds):
            raise RuntimeError("bad weights")

    a = ask(engine(world, model=replace(world["model"], scorer=Broken())), world["customer"], "add milk")
    assert a.product is not None and not a.personalized and a.fallbacks == ["ranker_failed"]


@pytest.mark.parametrize("text, intent, reason", [("what's the weather", "unknown", "not_understood"),
                                                  ("add zzqxj", "add", "no_candidates")])
def test_nothing_to_resolve_is_an_answer_without_product(world, text, intent, reason):
    a = ask(engine(world), world["customer"], text)
    assert a.intent.value == intent and a.product is None and a.confirmation.startswith("Sorry")
    assert a.fallbacks == [reason] and not a.personalized


# A conversation, turn by turn: utterance -> (which product, relative to the first answer), quantity, intent
TURNS = [
    ("add yogurt", "first", 1.0, "add"),
    ("no, the other one", "alt0", 1.0, "add"),
    ("make it three", "alt0", 3.0, "add"),
    ("cancel that", "alt0", 3.0, "remove"),
]


def test_conversation_turn_table_and_rejections_are_logged_as_feedback(world, tmp_path):
    log = FeedbackLog(tmp_path / "fb.sqlite")
    intake = FeedbackIntake(log, push=None)
    e = engine(world, on_feedback=intake.receive)
    first = None
    for text, which, quantity, intent in TURNS:
        a = ask(e, world["customer"], text, conversation_id="conv-1")
        first = first or a
        want = first.product.id if which == "first" else first.alternatives[int(which[3:])].id
        assert (a.product.id, a.quantity, a.intent.value) == (want, quantity, intent), text
        assert a.conversation_id == "conv-1"
    kinds = [(ev.kind, ev.product_id) for ev in log.events()]
    assert kinds == [("reasked", first.product.id), ("removed", first.alternatives[0].id)]


def test_constraint_follow_up_picks_a_bigger_product(world):
    e = engine(world)
    first = ask(e, world["customer"], "add milk", conversation_id="c-big")
    bigger = ask(e, world["customer"], "the bigger one", conversation_id="c-big")
    from voicecart.ranking.parse import size_of

    before, after = size_of(first.product.title), size_of(bigger.product.title)
    if "no_alternative" in bigger.fallbacks:
        assert bigger.product.id == first.product.id
    else:
        assert before[0] == after[0] and after[1] > before[1]


def test_a_profile_without_history_is_ranked_but_not_called_personal(world):
    a = ask(engine(world, StaticProfiles([CustomerProfile(customer_id="fresh")])), "fresh", "add milk")
    assert a.product is not None and not a.personalized and a.fallbacks == []


def test_follow_up_without_a_conversation_is_a_new_request(world):
    a = ask(engine(world), world["customer"], "no, the other one")
    assert a.product is None


def test_hot_swap_serves_the_new_version_to_new_requests(world):
    e = engine(world)
    old = e.swap(replace(world["model"], version="v0002"))
    assert old == "v0001" and ask(e, world["customer"], "add milk").model_version == "v0002"


def test_utterance_text_is_not_logged_unless_enabled(world, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="voicecart.serving.requests"):
        ask(engine(world), world["customer"], "add secret sauce")
    assert caplog.records and all("secret" not in r.getMessage() for r in caplog.records)
    assert world["customer"] in caplog.records[-1].getMessage()


class CountingDownStore(DownStore):
    def __init__(self) -> None:
        self.calls = 0

    def get(self, customer_id: str) -> CustomerProfile | None:
        self.calls += 1
        return super().get(customer_id)


def test_a_failing_store_opens_its_breaker_and_is_no_longer_called(world):
    store = CountingDownStore()
    e = engine(world, store)
    answers = [ask(e, world["customer"], "add milk") for _ in range(6)]
    assert store.calls == 3  # serving.breaker_failures, then skipped until the background trial
    assert all(a.product is not None and a.fallbacks == ["profile_unavailable"] for a in answers)
    assert e.health.degraded() == ["profiles"]


def test_latency_counts_from_receipt_so_a_wait_for_a_thread_is_not_hidden(world):
    waited = ask(engine(world), world["customer"], "add milk")
    e = engine(world)
    queued = e.resolve(ResolveRequest(customer_id=world["customer"], utterance="add milk"),
                       received_at=time.perf_counter() - 0.25)
    assert queued.latency_ms >= 250.0  # the quarter second before the engine started is in the answer
    assert waited.latency_ms < queued.latency_ms


class DownConversations:
    def get(self, conversation_id, customer_id):
        from voicecart.serving.engine import ConversationUnavailable

        raise ConversationUnavailable("redis down")

    def put(self, conversation_id, turn):
        from voicecart.serving.engine import ConversationUnavailable

        raise ConversationUnavailable("redis down")


def test_a_conversation_store_that_is_down_gives_single_turn_answers_that_say_so(world):
    e = engine(world, conversations=DownConversations())
    first = ask(e, world["customer"], "add yogurt", conversation_id="c-down")
    follow = ask(e, world["customer"], "no, the other one", conversation_id="c-down")
    assert first.product is not None and first.fallbacks == ["conversation_unavailable"]
    assert follow.product is None and "conversation_unavailable" in follow.fallbacks


def test_a_dead_triton_is_skipped_once_its_breaker_opens(world):
    local = OnnxScorer(world["bundle"] / "onnx" / "model.onnx")
    dead = TritonScorer(f"127.0.0.1:{free_port()}", "voicecart", timeout_s=0.2)
    calls = []
    real = dead.score
    dead.score = lambda feeds: calls.append(1) or real(feeds)  # type: ignore[method-assign]
    e = engine(world, model=replace(world["model"], scorer=FallbackScorer(dead, local)))
    answers = [ask(e, world["customer"], "add bread") for _ in range(5)]
    assert len(calls) == 3 and all(a.fallbacks == ["predictor_unavailable"] and a.personalized for a in answers)


def test_an_unknown_answer_says_why(world):
    a = ask(engine(world), world["customer"], "add -2 apples")
    assert a.product is None and a.reason == "negative_quantity" and "negative" in a.confirmation
    b = ask(engine(world), world["customer"], "add zzqxj")
    assert b.reason == "no_candidates"


def test_a_canary_answers_its_share_of_customers_each_always_on_its_arm(world):
    from voicecart.serving.engine import arm_of

    e = engine(world)
    e.swap(world["model"], replace(world["model"], version="v0002"), 30)
    customers = [f"C{i:05d}" for i in range(400)]
    answers = {c: ask(e, c, "add milk") for c in customers}
    canary = {c for c, a in answers.items() if a.arm == "canary"}
    assert 0.2 < len(canary) / len(customers) < 0.4  # crc32 of the id spreads customers evenly
    assert all(a.model_version == ("v0002" if a.arm == "canary" else "v0001") for a in answers.values())
    assert all(arm_of(c, 30) == answers[c].arm for c in customers)  # sticky: the customer's, not the request's
    assert e.arms["canary"].requests == len(canary) and e.arms["champion"].requests == len(customers) - len(canary)
    event = e.feedback_arm(FeedbackEvent(event_id="e1", request_id="r1", customer_id=next(iter(canary)),
                                         product_id="p", kind="kept", timestamp=datetime.now(timezone.utc)))
    assert (event.arm, event.model_version) == ("canary", "v0002")
    assert (e.arms["canary"].feedback, e.arms["canary"].kept) == (1, 1)
    e.swap(world["model"])  # the split ends: everyone on the champion, counts start over
    assert ask(e, next(iter(canary)), "add milk").arm == "champion" and e.arms["canary"].requests == 0
    assert arm_of("anyone", 0) == "champion"
