"""Live outcome counts of the canary and stable arms, read from Prometheus over its HTTP API.

The metric names are the ones ``voicecart.serving.metrics`` exports:

* ``voicecart_resolve_latency_seconds`` (histogram): requests answered and how fast;
* ``voicecart_fallbacks_total{reason}``: degraded answers; ``ranker_failed`` and ``deadline`` count
  as errors (the ranker failed, or the answer missed its deadline: the engine's ``ERROR_FALLBACKS``);
* ``voicecart_feedback_events_total{kind, duplicate}``: feedback; kept = ``kept`` or ``bought``;
* ``voicecart_model_info{version}`` (gauge = 1 per pod): which bundle a pod serves.

An arm is told apart by the model version its pods serve: every counter is joined with
``voicecart_model_info`` on (namespace, pod), so no metric needs a version label of its own.
Counts are ``increase()`` over the time since the canary started (counter resets handled by
Prometheus).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

from voicecart.rollout.decision import ArmCounts

ERROR_REASONS = ("ranker_failed", "deadline")
KEPT_KINDS = ("kept", "bought")


class MetricsError(RuntimeError):
    """Prometheus could not be read or answered something unusable (the message says which query)."""


class Querier(Protocol):
    def query(self, promql: str, at: float | None = None) -> float: ...


@dataclass(frozen=True)
class ArmQueries:
    """The PromQL that counts one arm's outcomes over ``window`` (e.g. ``"1800s"``)."""

    namespace: str
    version: str
    window: str
    latency_bound_s: float = 0.05
    error_reasons: tuple[str, ...] = ERROR_REASONS
    kept_kinds: tuple[str, ...] = KEPT_KINDS

    def _arm(self, expr: str) -> str:
        info = f'voicecart_model_info{{namespace="{self.namespace}",version="{self.version}"}}'
        return f"sum(({expr}) * on(namespace, pod) group_left(version) {info})"

    def _sel(self, extra: str = "") -> str:
        return f'{{namespace="{self.namespace}"{"," + extra if extra else ""}}}'

    @property
    def requests(self) -> str:
        return self._arm(f"increase(voicecart_resolve_latency_seconds_count{self._sel()}[{self.window}])")

    @property
    def errors(self) -> str:
        reasons = "|".join(self.error_reasons)
        return self._arm(f'increase(voicecart_fallbacks_total{self._sel(f"reason=~{chr(34)}{reasons}{chr(34)}")}[{self.window}])')

    @property
    def fast(self) -> str:
        le = _le(self.latency_bound_s)
        return self._arm(f'increase(voicecart_resolve_latency_seconds_bucket{self._sel(f"le={chr(34)}{le}{chr(34)}")}[{self.window}])')

    @property
    def feedback(self) -> str:
        return self._arm(f'increase(voicecart_feedback_events_total{self._sel("duplicate=" + chr(34) + "false" + chr(34))}[{self.window}])')

    @property
    def kept(self) -> str:
        kinds = "|".join(self.kept_kinds)
        sel = self._sel(f'duplicate="false",kind=~"{kinds}"')
        return self._arm(f"increase(voicecart_feedback_events_total{sel}[{self.window}])")

    @property
    def p99_seconds(self) -> str:
        info = f'voicecart_model_info{{namespace="{self.namespace}",version="{self.version}"}}'
        inner = (f"increase(voicecart_resolve_latency_seconds_bucket{self._sel()}[{self.window}])"
                 f" * on(namespace, pod) group_left(version) {info}")
        return f"histogram_quantile(0.99, sum by (le) ({inner}))"


def _le(seconds: float) -> str:
    """Prometheus' spelling of a bucket bound (prometheus_client writes floats with repr: 0.05, 1.0)."""
    return repr(float(seconds))


def read_arm(prom: Querier, queries: ArmQueries, at: float | None = None) -> ArmCounts:
    """The arm's counts at one evaluation time ``at`` (unix seconds; default now); an arm with no
    series yet counts as zero. All queries of a look share ``at``: ``increase()`` extrapolates to
    the window's edges, so parts and wholes evaluated a second apart would not add up."""
    at = time.time() if at is None else at
    requests = prom.query(queries.requests, at)
    fast = prom.query(queries.fast, at)
    feedback = prom.query(queries.feedback, at)
    p99 = prom.query(queries.p99_seconds, at)
    # increase() extrapolates, so counts are not integers and the parts can overshoot the whole by a hair
    errors = min(prom.query(queries.errors, at), requests)
    slow = min(max(requests - fast, 0.0), requests)
    kept = min(prom.query(queries.kept, at), feedback)
    return ArmCounts(requests=requests, errors=errors, slow=slow, feedback=feedback, kept=kept,
                     p99_ms=None if math.isnan(p99) else p99 * 1000.0)


class PrometheusClient:
    """Instant queries over the Prometheus HTTP API (``GET /api/v1/query``)."""

    def __init__(self, url: str, timeout_s: float = 10.0, headers: dict[str, str] | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout_s, headers=headers or {})

    def query(self, promql: str, at: float | None = None) -> float:
        """The scalar value of ``promql`` at unix time ``at`` (default: now): 0.0 for an empty
        result, NaN when Prometheus says NaN."""
        import httpx

        params: dict[str, str] = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            resp = self._client.get("/api/v1/query", params=params)
        except httpx.HTTPError as exc:
            raise MetricsError(f"Prometheus at {self.url} unreachable: {exc}") from None
        try:
            body: dict[str, Any] = resp.json()
        except ValueError:
            raise MetricsError(f"Prometheus at {self.url} answered HTTP {resp.status_code} with non-JSON") from None
        if resp.status_code != 200 or body.get("status") != "success":
            raise MetricsError(f"Prometheus refused query {promql!r}: {body.get('errorType', resp.status_code)}: "
                               f"{body.get('error', '')}")
        data = body.get("data") or {}
        result = data.get("result")
        if data.get("resultType") == "scalar":
            return float(result[1])
        if data.get("resultType") != "vector":
            raise MetricsError(f"query {promql!r} returned {data.get('resultType')!r}, expected a vector")
        if not result:
            return 0.0
        if len(result) > 1:
            raise MetricsError(f"query {promql!r} returned {len(result)} series, expected one (missing sum()?)")
        return float(result[0]["value"][1])

    def close(self) -> None:
        self._client.close()
