"""The canary decision: an always-valid sequential test on live outcome counts of canary vs stable.

Each outcome is a proportion per arm: the error rate (answers that failed: ranker errors, missed
deadlines), the slow rate (answers slower than the latency bound, so "p99 under the bound" is
"slow rate under 1 %"), and the kept rate (feedback that kept or bought the answer). For the
difference ``d = canary - stable`` of each we keep a mixture-SPRT confidence sequence
(Johari, Pekelis, Walsh: "Always valid inference", 2017; normal mixture with variance tau^2):

    half_width = sqrt( 2 V (V + tau^2) / tau^2 * ( log(1/alpha) + 0.5 log((V + tau^2) / V) ) )

with ``V`` the variance of the observed difference. It holds *uniformly over time*, so the
controller may look after every scrape and stop as soon as the evidence is clear, without the
inflated false-alarm rate of re-running a fixed-sample test. Decision, once each arm has seen
``min_requests`` requests (and ``min_feedback`` feedback events, when the kept rate gates):

* **rollback** as soon as any outcome is confidently worse: the interval lies wholly on the bad
  side of zero (errors or slowness up, kept rate down);
* **promote** when every outcome is confidently *not worse than the margin* (non-inferiority):
  the bad end of each interval is inside its margin;
* otherwise **continue**; past ``max_duration_s`` without a verdict: **rollback** (a canary
  that cannot prove itself does not take the traffic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum


class Verdict(str, Enum):
    continue_ = "continue"
    promote = "promote"
    rollback = "rollback"


@dataclass(frozen=True)
class ArmCounts:
    """Cumulative outcomes of one arm since the canary started."""

    requests: float
    errors: float
    slow: float
    feedback: float
    kept: float
    p99_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("requests", "errors", "slow", "feedback", "kept"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite count >= 0, got {value!r}")
        if self.errors > self.requests or self.slow > self.requests:
            raise ValueError(f"errors ({self.errors}) and slow ({self.slow}) cannot exceed requests ({self.requests})")
        if self.kept > self.feedback:
            raise ValueError(f"kept ({self.kept}) cannot exceed feedback ({self.feedback})")


@dataclass(frozen=True)
class Policy:
    """How sure, how much worse is tolerable, and how much traffic before deciding."""

    alpha: float = 0.05
    """Error probability of the whole sequence of looks (per outcome)."""
    tau: float = 0.02
    """Std-dev of the normal mixture over effect sizes; set near the effect worth detecting."""
    min_requests: int = 500
    min_feedback: int = 0
    """Feedback events per arm before promotion; 0 = the kept rate can only veto (roll back), not
    gate. Set it once feedback is attributed to the arm that answered (docs/deployment.md)."""
    max_duration_s: float = 6 * 3600
    error_margin: float = 0.005
    """Absolute error-rate increase still acceptable for promotion."""
    slow_margin: float = 0.005
    kept_margin: float = 0.02
    """Absolute kept-rate drop still acceptable for promotion."""
    latency_bound_ms: float = 50.0
    """A request slower than this counts as slow; must be a bucket bound of the latency histogram."""

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")
        for name in ("error_margin", "slow_margin", "kept_margin"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.min_requests < 1 or self.min_feedback < 0:
            raise ValueError("min_requests must be >= 1 and min_feedback >= 0")


@dataclass(frozen=True)
class Interval:
    """Always-valid confidence interval for ``canary - stable`` of one outcome."""

    outcome: str
    canary_rate: float
    stable_rate: float
    low: float
    high: float
    higher_is_better: bool
    margin: float

    @property
    def estimate(self) -> float:
        return self.canary_rate - self.stable_rate

    @property
    def worse(self) -> bool:
        """Confidently worse than stable (the whole interval on the bad side of zero)."""
        return self.high < 0 if self.higher_is_better else self.low > 0

    @property
    def not_worse(self) -> bool:
        """Confidently no worse than the margin allows (non-inferiority)."""
        return self.low > -self.margin if self.higher_is_better else self.high < self.margin


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: list[str]
    intervals: list[Interval] = field(default_factory=list)


def confidence_sequence(x_c: float, n_c: float, x_s: float, n_s: float, alpha: float, tau: float) -> tuple[float, float, float]:
    """(estimate, low, high) of the always-valid mSPRT interval for ``x_c/n_c - x_s/n_s``."""
    if n_c <= 0 or n_s <= 0:
        return 0.0, -1.0, 1.0
    p_c, p_s = x_c / n_c, x_s / n_s
    # Floor each arm's variance at one pseudo-event so zero-event arms do not collapse the width.
    v = max(p_c * (1 - p_c), 1.0 / n_c) / n_c + max(p_s * (1 - p_s), 1.0 / n_s) / n_s
    t2 = tau * tau
    half = math.sqrt(2 * v * (v + t2) / t2 * (math.log(1 / alpha) + 0.5 * math.log((v + t2) / v)))
    d = p_c - p_s
    return d, max(-1.0, d - half), min(1.0, d + half)


def _interval(outcome: str, xc: float, nc: float, xs: float, ns: float, policy: Policy,
              higher_is_better: bool, margin: float) -> Interval:
    d, low, high = confidence_sequence(xc, nc, xs, ns, policy.alpha, policy.tau)
    return Interval(outcome, xc / nc if nc else 0.0, xs / ns if ns else 0.0, low, high, higher_is_better, margin)


def decide(canary: ArmCounts, stable: ArmCounts, elapsed_s: float, policy: Policy = Policy()) -> Decision:
    """One look at the counts since the canary started: continue, promote or rollback, with why."""
    enough_requests = min(canary.requests, stable.requests) >= policy.min_requests
    enough_feedback = min(canary.feedback, stable.feedback) >= policy.min_feedback
    intervals = [
        _interval("error_rate", canary.errors, canary.requests, stable.errors, stable.requests, policy, False, policy.error_margin),
        _interval("slow_rate", canary.slow, canary.requests, stable.slow, stable.requests, policy, False, policy.slow_margin),
    ]
    # The kept rate needs feedback attributed to each arm. Whenever both arms have some, it can
    # veto (roll back); it gates promotion only when min_feedback > 0.
    if policy.min_feedback > 0 or (canary.feedback > 0 and stable.feedback > 0):
        intervals.append(_interval("kept_rate", canary.kept, canary.feedback, stable.kept, stable.feedback,
                                   policy, True, policy.kept_margin))
    # A confidently worse canary is rolled back as soon as it shows, even before the minimum
    # traffic: the interval is valid at every look.
    worse = [i for i in intervals if i.worse and (i.outcome != "kept_rate" or canary.feedback > 0)]
    if worse and (canary.requests >= 1):
        return Decision(Verdict.rollback, [f"{i.outcome} is worse: canary {i.canary_rate:.4f} vs stable {i.stable_rate:.4f} "
                                           f"(difference in [{i.low:+.4f}, {i.high:+.4f}])" for i in worse], intervals)
    waiting = []
    if not enough_requests:
        waiting.append(f"waiting for {policy.min_requests} requests per arm (canary {canary.requests:.0f}, stable {stable.requests:.0f})")
    if policy.min_feedback > 0 and not enough_feedback:
        waiting.append(f"waiting for {policy.min_feedback} feedback events per arm "
                       f"(canary {canary.feedback:.0f}, stable {stable.feedback:.0f})")
    unclear = [i for i in intervals if not i.not_worse and (i.outcome != "kept_rate" or policy.min_feedback > 0)]
    if not waiting and not unclear:
        return Decision(Verdict.promote, [f"{i.outcome}: canary no worse than stable by more than {i.margin} "
                                          f"(difference in [{i.low:+.4f}, {i.high:+.4f}])" for i in intervals], intervals)
    reasons = waiting + [f"{i.outcome}: not yet clear (difference in [{i.low:+.4f}, {i.high:+.4f}], margin {i.margin})"
                         for i in unclear]
    if elapsed_s >= policy.max_duration_s:
        return Decision(Verdict.rollback, [f"no verdict after {elapsed_s:.0f}s (limit {policy.max_duration_s:.0f}s)"] + reasons,
                        intervals)
    return Decision(Verdict.continue_, reasons, intervals)
