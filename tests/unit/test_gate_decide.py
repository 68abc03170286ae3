"""The champion/challenger gate promotes only a clear, guardrail-safe win, and says why otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from voicecart.evaluation.gate import GateConfig, Scorecard, catalogue_coverage, decide, strongest_baseline

N = 3000
CANDIDATES = 2000


def _card(name: str, hit_rate: float, *, cold_hit_rate: float | None = None, seed: int = 0, right: float = 0.2,
          spread: float | None = None, latency: float | None = 0.2, n: int = N, baseline: bool = False) -> Scorecard:
    """Ranks where the truth is at rank 1 with probability ``hit_rate`` (else rank 2..5 or a miss).

    Right answers cover ``right`` of the ``CANDIDATES`` products; wrong ones repeat one product, or
    with ``spread`` take that share of the catalogue (answers that differ without being right).
    """
    rng = np.random.default_rng(seed)
    no_history = np.arange(n) % 4 == 0
    p = np.where(no_history, hit_rate if cold_hit_rate is None else cold_hit_rate, hit_rate)
    ranks = np.where(rng.random(n) < p, 1, rng.integers(0, 6, n))
    hits = np.flatnonzero(ranks == 1)
    answers = np.full(n, CANDIDATES - 1)
    answers[hits] = np.arange(len(hits)) % max(1, min(len(hits), int(right * CANDIDATES)))  # few hits: fewer products
    if spread is not None:
        wrong = np.flatnonzero(ranks != 1)
        answers[wrong] = np.arange(len(wrong)) % int(spread * CANDIDATES)
    return Scorecard(name=name, ranks=ranks, no_history=no_history,
                     coverage=catalogue_coverage(answers, np.arange(CANDIDATES)),
                     latency_p99_ms=None if baseline else latency, is_baseline=baseline)


def test_clear_win_with_every_guardrail_holding_is_promoted() -> None:
    decision = decide(_card("v0002", 0.40, seed=1), _card("v0001", 0.25, seed=2), GateConfig(margin=0.05))
    assert decision.promote and decision.reasons == []
    assert decision.low > 0 and decision.difference >= 0.05
    assert "PROMOTE v0002 over v0001" in decision.summary
    assert "| hr@1 | yes |" in decision.markdown()


def test_win_smaller_than_the_margin_is_refused() -> None:
    decision = decide(_card("v0002", 0.30, seed=1), _card("v0001", 0.25, seed=2), GateConfig(margin=0.10))
    assert not decision.promote
    assert decision.reasons[0].startswith("hr@1 fails") and "needs ≥ 0.1" in decision.reasons[0]
    assert "KEEP v0001, refuse v0002" in decision.summary


def test_win_whose_interval_touches_zero_is_refused() -> None:
    # same hit rates on 60 queries: the bootstrap interval of the difference straddles zero
    decision = decide(_card("v0002", 0.3, seed=5, n=60), _card("v0001", 0.3, seed=6, n=60))
    assert not decision.promote and decision.low <= 0 <= decision.high
    assert "CI" in decision.reasons[0]


def test_worse_challenger_is_refused() -> None:
    decision = decide(_card("v0002", 0.15, seed=1), _card("v0001", 0.30, seed=2))
    assert not decision.promote and decision.difference < 0


def test_regression_on_customers_without_history_blocks_an_overall_win() -> None:
    challenger = _card("v0002", 0.45, cold_hit_rate=0.05, seed=1)
    champion = _card("v0001", 0.25, cold_hit_rate=0.25, seed=2)
    decision = decide(challenger, champion)
    assert not decision.promote
    assert [r.split(" fails")[0] for r in decision.reasons] == ["hr@1 no history"]


def test_slower_exported_model_is_refused() -> None:
    decision = decide(_card("v0002", 0.40, seed=1, latency=2.5), _card("v0001", 0.25, seed=2, latency=0.9))
    assert [r.split(" fails")[0] for r in decision.reasons] == ["latency p99 ms"]
    # sub-millisecond growth (0.14 -> 0.35 ms: a wider ranker beside a tiny one) is not a regression: the slack absorbs it
    jitter = decide(_card("v0002", 0.40, seed=1, latency=0.35), _card("v0001", 0.25, seed=2, latency=0.14))
    assert jitter.promote
    over_budget = decide(_card("v0002", 0.40, seed=1, latency=9.0), _card("b", 0.25, seed=2, baseline=True),
                         GateConfig(latency_budget_ms=5.0))
    assert [r.split(" fails")[0] for r in over_budget.reasons] == ["latency p99 ms"]


def test_unmeasured_latency_is_a_refusal_not_a_pass() -> None:
    decision = decide(_card("v0002", 0.40, seed=1, latency=None, baseline=True), _card("v0001", 0.25, seed=2))
    assert "latency p99 ms fails" in decision.reasons[0]


def test_losing_the_catalogue_of_right_answers_is_refused() -> None:
    # more hits overall, all of them on a few products: a collapse onto the bestsellers
    decision = decide(_card("v0002", 0.40, seed=1, right=0.05), _card("v0001", 0.25, seed=2, right=0.30))
    assert [r.split(" fails")[0] for r in decision.reasons] == ["coverage@1 of right answers"]


def test_the_coverage_allowance_is_a_share_of_the_champions_right_answers() -> None:
    champion = _card("v0001", 0.25, seed=2, right=0.30)
    assert decide(_card("v0002", 0.40, seed=1, right=0.28), champion).promote  # loses 7% of them
    refused = decide(_card("v0002", 0.40, seed=1, right=0.26), champion)  # loses 13%
    assert [r.split(" fails")[0] for r in refused.reasons] == ["coverage@1 of right answers"]
    assert "may lose at most 10% of the champion's" in refused.reasons[0]


def test_answers_that_differ_without_being_right_earn_no_coverage() -> None:
    # the champion's wrong answers are scattered over the catalogue (as random's, or a popularity
    # that rotates day by day, are); the challenger is right more often on as many products and
    # wrong on one: its spread of answers is far lower, and that is no regression
    challenger = _card("v0002", 0.40, seed=1, right=0.20)
    champion = _card("baseline:rotating", 0.25, seed=2, right=0.20, spread=0.60, baseline=True)
    assert challenger.coverage < champion.coverage - 0.3
    decision = decide(challenger, champion)
    assert decision.promote, decision.reasons
    check = next(c for c in decision.checks if c.name == "coverage@1 of right answers")
    assert check.challenger == check.champion == 0.2 and "spread of all answers, not gated" in check.detail


def test_unrecorded_answers_are_a_refusal_not_a_pass() -> None:
    card = _card("v0002", 0.40, seed=1)
    bare = Scorecard(name="v0002", ranks=card.ranks, no_history=card.no_history, coverage=0.5, latency_p99_ms=0.2)
    decision = decide(bare, _card("v0001", 0.25, seed=2))
    assert [r.split(" fails")[0] for r in decision.reasons] == ["coverage@1 of right answers"]
    assert "no top-1 answer per query was recorded" in decision.reasons[0]


def test_first_model_faces_the_strongest_baseline() -> None:
    baselines = [_card("baseline:random", 0.06, seed=3, baseline=True),
                 _card("baseline:most_bought", 0.24, seed=4, baseline=True),
                 _card("baseline:popularity", 0.19, seed=5, baseline=True)]
    champion = strongest_baseline(baselines)
    assert champion.name == "baseline:most_bought"
    decision = decide(_card("v0001", 0.32, seed=1), champion)
    assert decision.promote and decision.champion == "baseline:most_bought"
    assert "champion is a baseline" in next(c.detail for c in decision.checks if c.name == "latency p99 ms")
    with pytest.raises(ValueError, match="at least one baseline"):
        strongest_baseline([])


def test_contenders_scored_on_different_queries_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match="not scored on the same queries"):
        decide(_card("v0002", 0.4, n=100), _card("v0001", 0.3, n=120))


def test_catalogue_coverage_keeps_the_answers_it_counts() -> None:
    coverage = catalogue_coverage(np.array([1, 1, 2]), np.array([1, 2, 3, 4]))
    assert coverage == 0.5 and f"{coverage:.2f}" == "0.50" and coverage.n_candidates == 4
    assert catalogue_coverage(np.array([]), np.array([])) == 0.0
    card = Scorecard(name="v1", ranks=np.array([1, 2, 1]), no_history=np.zeros(3, bool), coverage=coverage)
    assert list(card.answers) == [1, 1, 2] and card.right_coverage == 0.5  # products 1 and 2 answered right
