"""The champion/challenger gate promotes only a clear, guardrail-safe win, and says why otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from voicecart.evaluation.gate import GateConfig, Scorecard, catalogue_coverage, decide, strongest_baseline

N = 3000


def _card(name: str, hit_rate: float, *, cold_hit_rate: float | None = None, seed: int = 0, coverage: float = 0.5,
          latency: float | None = 0.2, n: int = N, baseline: bool = False) -> Scorecard:
    """Ranks where the truth is at rank 1 with probability ``hit_rate`` (else rank 2..5 or a miss)."""
    rng = np.random.default_rng(seed)
    no_history = np.arange(n) % 4 == 0
    p = np.where(no_history, hit_rate if cold_hit_rate is None else cold_hit_rate, hit_rate)
    ranks = np.where(rng.random(n) < p, 1, rng.integers(0, 6, n))
    return Scorecard(name=name, ranks=ranks, no_history=no_history, coverage=coverage,
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
    decision = decide(_card("v0002", 0.40, seed=1, latency=1.9), _card("v0001", 0.25, seed=2, latency=0.9))
    assert [r.split(" fails")[0] for r in decision.reasons] == ["latency p99 ms"]
    # sub-millisecond jitter (0.03 -> 0.075 ms) is not a regression: the absolute slack absorbs it
    jitter = decide(_card("v0002", 0.40, seed=1, latency=0.075), _card("v0001", 0.25, seed=2, latency=0.03))
    assert jitter.promote
    over_budget = decide(_card("v0002", 0.40, seed=1, latency=9.0), _card("b", 0.25, seed=2, baseline=True),
                         GateConfig(latency_budget_ms=5.0))
    assert [r.split(" fails")[0] for r in over_budget.reasons] == ["latency p99 ms"]


def test_unmeasured_latency_is_a_refusal_not_a_pass() -> None:
    decision = decide(_card("v0002", 0.40, seed=1, latency=None, baseline=True), _card("v0001", 0.25, seed=2))
    assert "latency p99 ms fails" in decision.reasons[0]


def test_coverage_drop_is_refused() -> None:
    decision = decide(_card("v0002", 0.40, seed=1, coverage=0.10), _card("v0001", 0.25, seed=2, coverage=0.40))
    assert [r.split(" fails")[0] for r in decision.reasons] == ["coverage@1"]


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


def test_catalogue_coverage() -> None:
    assert catalogue_coverage(np.array([1, 1, 2]), np.array([1, 2, 3, 4])) == 0.5
    assert catalogue_coverage(np.array([]), np.array([])) == 0.0
