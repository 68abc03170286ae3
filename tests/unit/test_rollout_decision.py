"""The canary decision on recorded metric series: cumulative counts of both arms, one look per
scrape, as the controller reads them from Prometheus. The series are drawn once from fixed seeds
(numpy's PCG64), so every run sees the same numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voicecart.rollout import ArmCounts, Policy, Verdict, confidence_sequence, decide

POLICY = Policy(min_requests=500, min_feedback=200, max_duration_s=6 * 3600)
LOOK_S = 60.0


def series(seed: int, looks: int, rps: float, share: float, err: float, slow: float, kept: float,
           feedback_share: float = 0.3) -> list[ArmCounts]:
    """Cumulative counts of one arm at each look: ``rps * share`` requests a second."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(rps * share * LOOK_S, size=looks)
    e, s = rng.binomial(n, err), rng.binomial(n, slow)
    f = rng.binomial(n, feedback_share)
    k = rng.binomial(f, kept)
    c = [np.cumsum(x) for x in (n, e, s, f, k)]
    return [ArmCounts(*(float(x[i]) for x in c)) for i in range(looks)]


def run(canary: list[ArmCounts], stable: list[ArmCounts], policy: Policy = POLICY) -> tuple[Verdict, int]:
    """Look after every scrape until a verdict; returns it and the look it came at."""
    for i, (c, s) in enumerate(zip(canary, stable, strict=True)):
        d = decide(c, s, (i + 1) * LOOK_S, policy)
        if d.verdict is not Verdict.continue_:
            return d.verdict, i
    return Verdict.continue_, len(canary) - 1


STABLE = dict(err=0.004, slow=0.006, kept=0.80)


def arms(seed: int, looks: int = 240, rps: float = 40.0, share: float = 0.1, **canary_rates: float):
    rates = {**STABLE, **canary_rates}
    return (series(seed, looks, rps, share, **rates), series(seed + 10_000, looks, rps, 1 - share, **STABLE))


def test_a_healthy_canary_is_promoted_and_not_before_enough_traffic() -> None:
    canary, stable = arms(1, share=0.2, kept=0.82)
    verdict, at = run(canary, stable)
    assert verdict is Verdict.promote
    assert canary[at].requests >= POLICY.min_requests and canary[at].feedback >= POLICY.min_feedback


@pytest.mark.parametrize("bad, rates", [
    ("error_rate", dict(err=0.03)),
    ("slow_rate", dict(slow=0.05)),
    ("kept_rate", dict(kept=0.65)),
])
def test_a_worse_canary_is_rolled_back_naming_the_outcome(bad: str, rates: dict[str, float]) -> None:
    canary, stable = arms(2, **rates)
    verdict, at = run(canary, stable)
    assert verdict is Verdict.rollback
    d = decide(canary[at], stable[at], (at + 1) * LOOK_S, POLICY)
    assert any(r.startswith(bad) for r in d.reasons), d.reasons
    assert at < 120, "a clearly worse canary is caught within two hours at 4 req/s"


def test_a_canary_that_breaks_badly_is_rolled_back_before_the_minimum_traffic() -> None:
    canary, stable = arms(3, err=0.5)
    verdict, at = run(canary, stable)
    assert verdict is Verdict.rollback
    assert canary[at].requests < POLICY.min_requests


def test_no_verdict_within_the_time_limit_means_rollback() -> None:
    canary, stable = arms(4, looks=30, rps=0.5, kept=0.80)  # far too little traffic to decide
    policy = Policy(max_duration_s=30 * LOOK_S)
    verdict, at = run(canary, stable, policy)
    assert (verdict, at) == (Verdict.rollback, 29)
    assert "no verdict after" in decide(canary[-1], stable[-1], 30 * LOOK_S, policy).reasons[0]


def test_continuous_monitoring_keeps_false_alarms_under_alpha() -> None:
    """A/A: canary == stable. Looking after every scrape must not inflate false rollbacks the way
    repeatedly applying a fixed-sample test does."""
    policy = Policy(min_feedback=0, max_duration_s=math.inf)  # error and slow rate, 2 outcomes
    sequential = naive = 0
    trials = 200
    for seed in range(trials):
        canary, stable = arms(100 + seed, looks=120, share=0.5)
        sequential += run(canary, stable, policy)[0] is Verdict.rollback
        naive += any(_naive_z_rejects(c, s) for c, s in zip(canary, stable, strict=True))
    assert sequential / trials <= 2 * policy.alpha  # family of 2 outcomes, each at alpha
    assert naive / trials > sequential / trials  # peeking at a fixed-sample z-test inflates alarms


def _naive_z_rejects(c: ArmCounts, s: ArmCounts) -> bool:
    """A two-proportion z-test at 5 % applied at every look (what the sequential test replaces)."""
    for xc, xs in ((c.errors, s.errors), (c.slow, s.slow)):
        if c.requests < 50 or s.requests < 50:
            return False
        p = (xc + xs) / (c.requests + s.requests)
        se = math.sqrt(max(p * (1 - p), 1e-12) * (1 / c.requests + 1 / s.requests))
        if (xc / c.requests - xs / s.requests) / se > 1.96:
            return True
    return False


def test_confidence_sequence_narrows_with_traffic_and_covers_the_truth() -> None:
    widths = []
    for n in (100, 1_000, 10_000, 100_000):
        d, low, high = confidence_sequence(0.02 * n, n, 0.01 * n, n, alpha=0.05, tau=0.02)
        assert low <= 0.01 <= high and d == pytest.approx(0.01)
        widths.append(high - low)
    assert widths == sorted(widths, reverse=True) and widths[-1] < 0.005


def test_no_traffic_gives_the_widest_interval() -> None:
    assert confidence_sequence(0, 0, 5, 100, 0.05, 0.02) == (0.0, -1.0, 1.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(requests=10, errors=11, slow=0, feedback=0, kept=0), "cannot exceed requests"),
    (dict(requests=10, errors=0, slow=0, feedback=1, kept=2), "kept"),
    (dict(requests=-1, errors=0, slow=0, feedback=0, kept=0), "requests must be"),
    (dict(requests=float("nan"), errors=0, slow=0, feedback=0, kept=0), "requests must be"),
])
def test_impossible_counts_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ArmCounts(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=0), "alpha"), (dict(tau=0), "tau"), (dict(kept_margin=1.5), "kept_margin"), (dict(min_requests=0), "min_requests"),
])
def test_bad_policy_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy(**kwargs)


def test_without_feedback_gating_the_kept_rate_still_vetoes() -> None:
    veto_only = Policy(min_requests=500, min_feedback=0)
    canary, stable = arms(5, kept=0.60)
    assert run(canary, stable, veto_only)[0] is Verdict.rollback
    # no feedback attributed to the canary at all: decided on errors and latency alone
    canary, stable = arms(6, share=0.2)
    unattributed = [ArmCounts(c.requests, c.errors, c.slow, 0, 0) for c in canary]
    verdict, at = run(unattributed, stable, veto_only)
    assert verdict is Verdict.promote
    assert [i.outcome for i in decide(unattributed[at], stable[at], 60.0, veto_only).intervals] == ["error_rate", "slow_rate"]


def test_the_replay_shopper_keeps_swaps_or_removes_by_what_was_bought() -> None:
    from voicecart.rollout.local import shopper_feedback

    answer = {"product": {"id": "p1"}, "alternatives": [{"id": "p2"}, {"id": "p3"}]}
    assert shopper_feedback(answer, "p1") == ("kept", None)
    assert shopper_feedback(answer, "p3") == ("swapped", "p3")
    assert shopper_feedback(answer, "p9") == ("removed", None)
    assert shopper_feedback({"product": None, "alternatives": []}, "p1") == ("removed", None)
