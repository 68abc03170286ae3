"""The champion/challenger gate: a new model earns traffic only by winning on the same fresh window.

Promote only if
  1. the primary metric (default HR@1) of the challenger beats the champion's by at least the
     margin, with the paired-bootstrap interval of the difference clear of zero, and
  2. no guardrail regresses: HR@1 on queries whose customer has no history in the category,
     the exported model's latency (p99), and the catalogue coverage of its *right* top answers
     (distinct products answered correctly at rank 1 — a model that collapses onto the bestsellers
     loses it, while answers that are merely different, random or rotating day to day earn
     nothing; see :class:`CatalogueCoverage`).
The first model ever is compared with the strongest baseline. Every check is recorded with its
numbers, so a refusal says exactly why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from voicecart.evaluation.metrics import bootstrap, per_query


class GateConfig(BaseModel):
    primary: str = "hr@1"
    margin: float = Field(default=0.0, ge=0.0)
    """Minimum absolute gain of the primary metric over the champion."""
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    """1 - confidence of the bootstrap interval of the difference."""
    n_boot: int = Field(default=1000, ge=100)
    seed: int = 0
    cold_start_tolerance: float = Field(default=0.01, ge=0.0)
    """How much HR@1 on no-history queries may drop (absolute) before it counts as a regression."""
    latency_tolerance: float = Field(default=0.5, ge=0.0)
    """Allowed relative p99 increase of the exported model over the champion's."""
    latency_slack_ms: float = Field(default=1.0, ge=0.0)
    """Absolute slack on top of the relative tolerance: a sub-millisecond call may double (a wider ranker
    beside a tiny one) and still cost under 1 ms of the request's 50 ms deadline; the budget caps the rest."""
    latency_budget_ms: float = Field(default=5.0, gt=0.0)
    """Absolute p99 ceiling of one exported-model call (one request's candidates)."""
    coverage_tolerance: float = Field(default=0.10, ge=0.0, le=1.0)
    """Share of the champion's right-answered products the challenger may lose (relative: window-size free)."""


class CatalogueCoverage(float):
    """Distinct top-1 answers / distinct candidate products (this float), keeping the answers it counted.

    That share alone measures how *spread* the answers are, not how good: on Ta-Feng the random
    baseline has the highest, and a baseline whose answers rotate with each day's recent
    popularity beats a steadier, more accurate ranker on it (docs/pipeline.md, "the gate"). So
    the gate's guardrail counts the distinct products answered *right* at rank 1
    (:attr:`Scorecard.right_coverage`); this value carries the per-query answers for it.
    """

    answers: np.ndarray
    n_candidates: int

    def __new__(cls, answers: np.ndarray, n_candidates: int) -> "CatalogueCoverage":
        answers = np.asarray(answers)
        value = super().__new__(cls, len(np.unique(answers)) / n_candidates if n_candidates else 0.0)
        value.answers, value.n_candidates = answers, int(n_candidates)
        return value


@dataclass
class Scorecard:
    """One contender scored on the evaluation window (the same queries, in the same order, for all)."""

    name: str
    """A registry version (``v0003``) or ``baseline:<name>``."""
    ranks: np.ndarray
    """1-based rank of the true product per query (0 = not among the candidates)."""
    no_history: np.ndarray
    """[queries] bool: the customer has no history in the query's category."""
    coverage: float
    """Distinct top-1 products / distinct candidate products over the window (the answers' spread)."""
    latency_p99_ms: float | None = None
    """p99 of one exported-model call; None for baselines (nothing exported)."""
    is_baseline: bool = False
    answers: np.ndarray | None = None
    """[queries] the product answered at rank 1 (default: those ``coverage`` was counted from)."""
    n_candidates: int | None = None
    """Distinct candidate products of the window (the coverage denominator)."""

    def __post_init__(self) -> None:
        if self.answers is None and isinstance(self.coverage, CatalogueCoverage):
            self.answers, self.n_candidates = self.coverage.answers, self.coverage.n_candidates

    def metric(self, name: str, mask: np.ndarray | None = None) -> np.ndarray:
        ranks = self.ranks if mask is None else self.ranks[mask]
        return per_query(ranks)[name]

    @property
    def right_coverage(self) -> float | None:
        """Distinct products answered right at rank 1 / distinct candidates; None without one answer per query."""
        if self.answers is None or not self.n_candidates or len(self.answers) != len(self.ranks):
            return None
        return len(np.unique(self.answers[self.ranks == 1])) / self.n_candidates


class Check(BaseModel):
    name: str
    passed: bool
    challenger: float | None
    champion: float | None
    detail: str


class GateDecision(BaseModel):
    promote: bool
    challenger: str
    champion: str
    primary: str
    difference: float
    low: float
    high: float
    margin: float
    n_queries: int
    checks: list[Check]
    reasons: list[str]
    """Why it was refused (empty when promoted), one sentence per failed check."""

    @property
    def summary(self) -> str:
        if self.promote:
            return (f"PROMOTE {self.challenger} over {self.champion}: {self.primary} +{self.difference:.4f} "
                    f"(95% CI {self.low:+.4f}..{self.high:+.4f}, margin {self.margin}); all guardrails hold")
        return f"KEEP {self.champion}, refuse {self.challenger}: " + "; ".join(self.reasons)

    def markdown(self) -> str:
        rows = ["| check | passed | challenger | champion | detail |", "|---|---|---|---|---|"]
        for c in self.checks:
            fmt = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
            rows.append(f"| {c.name} | {'yes' if c.passed else '**no**'} | {fmt(c.challenger)} | "
                        f"{fmt(c.champion)} | {c.detail} |")
        return f"**Gate decision:** {self.summary}\n\n" + "\n".join(rows) + "\n"


def catalogue_coverage(top1_products: np.ndarray, candidate_products: np.ndarray) -> CatalogueCoverage:
    """Share of the distinct candidate products that some query answers with at rank 1 (with the answers)."""
    return CatalogueCoverage(top1_products, len(np.unique(candidate_products)))


def strongest_baseline(baselines: list[Scorecard], primary: str = "hr@1") -> Scorecard:
    """The baseline the first model must beat: the best on the primary metric."""
    if not baselines:
        raise ValueError("the gate needs at least one baseline to compare the first model with")
    return max(baselines, key=lambda s: float(s.metric(primary).mean()))


def decide(challenger: Scorecard, champion: Scorecard, config: GateConfig | None = None) -> GateDecision:
    """Compare two scorecards on the same queries and decide whether the challenger takes over."""
    config = config or GateConfig()
    if len(challenger.ranks) != len(champion.ranks) or not np.array_equal(challenger.no_history, champion.no_history):
        raise ValueError(f"{challenger.name} and {champion.name} were not scored on the same queries "
                         f"({len(challenger.ranks)} vs {len(champion.ranks)})")
    if len(challenger.ranks) == 0:
        raise ValueError("the evaluation window has no queries: nothing to decide on")
    checks: list[Check] = []

    # 1. primary metric: paired bootstrap of the per-query difference
    a, b = challenger.metric(config.primary), champion.metric(config.primary)
    diff = bootstrap(a - b, n_boot=config.n_boot, seed=config.seed, alpha=config.alpha)
    wins = diff.value >= config.margin and diff.low > 0
    level = f"{100 * (1 - config.alpha):.0f}%"
    checks.append(Check(
        name=config.primary, passed=wins, challenger=float(a.mean()), champion=float(b.mean()),
        detail=(f"difference {diff.value:+.4f}, {level} CI {diff.low:+.4f}..{diff.high:+.4f}; "
                f"needs ≥ {config.margin} with the CI above 0")))

    # 2. guardrail: customers without history in the category
    cold = challenger.no_history
    if cold.any():
        ca, cb = float(challenger.metric("hr@1", cold).mean()), float(champion.metric("hr@1", cold).mean())
        checks.append(Check(name="hr@1 no history", passed=ca >= cb - config.cold_start_tolerance,
                            challenger=ca, champion=cb,
                            detail=f"{int(cold.sum())} queries; may drop at most {config.cold_start_tolerance}"))
    else:
        checks.append(Check(name="hr@1 no history", passed=True, challenger=None, champion=None,
                            detail="no such queries in the window"))

    # 3. guardrail: exported-model latency
    lat = challenger.latency_p99_ms
    if lat is None:
        checks.append(Check(name="latency p99 ms", passed=False, challenger=None, champion=champion.latency_p99_ms,
                            detail="the challenger's exported model was not measured"))
    else:
        ceiling = config.latency_budget_ms
        detail = f"budget {config.latency_budget_ms} ms"
        if champion.latency_p99_ms is not None:
            relative = max(champion.latency_p99_ms * (1 + config.latency_tolerance),
                           champion.latency_p99_ms + config.latency_slack_ms)
            ceiling = min(ceiling, relative)
            detail += (f", and ≤ max(champion × {1 + config.latency_tolerance:g}, "
                       f"champion + {config.latency_slack_ms:g} ms)")
        else:
            detail += " (champion is a baseline: no exported model to compare with)"
        checks.append(Check(name="latency p99 ms", passed=lat <= ceiling, challenger=lat,
                            champion=champion.latency_p99_ms, detail=detail))

    # 4. guardrail: the catalogue the right answers cover (not the answers' mere spread)
    ca, cb = challenger.right_coverage, champion.right_coverage
    if ca is None or cb is None:
        checks.append(Check(name="coverage@1 of right answers", passed=False, challenger=ca, champion=cb,
                            detail="no top-1 answer per query was recorded, so the coverage cannot be checked"))
    else:
        checks.append(Check(name="coverage@1 of right answers", passed=ca >= cb * (1 - config.coverage_tolerance),
                            challenger=ca, champion=cb,
                            detail=(f"distinct products answered right at rank 1 / the window's "
                                    f"{challenger.n_candidates:,} candidate products; may lose at most "
                                    f"{config.coverage_tolerance:.0%} of the champion's (spread of all answers, "
                                    f"not gated: {challenger.coverage:.4f} vs {champion.coverage:.4f})")))

    reasons = [f"{c.name} fails: challenger {c.challenger if c.challenger is None else round(c.challenger, 4)} vs "
               f"champion {c.champion if c.champion is None else round(c.champion, 4)} ({c.detail})"
               for c in checks if not c.passed]
    return GateDecision(promote=not reasons, challenger=challenger.name, champion=champion.name,
                        primary=config.primary, difference=diff.value, low=diff.low, high=diff.high,
                        margin=config.margin, n_queries=len(challenger.ranks), checks=checks, reasons=reasons)
