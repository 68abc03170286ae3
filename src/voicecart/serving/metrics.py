"""Prometheus metrics of the resolve path (served at /metrics by the KServe ModelServer).

Two latencies: ``voicecart_request_latency_seconds`` times each HTTP request from its receipt by
the server to the last byte of its response (queueing for a worker thread included: what a
client feels, less the network), by route; ``voicecart_resolve_latency_seconds`` times the engine
alone (parse to answer). Under load the first grows and the second does not: the gap is queueing.
The engine records each answer itself (``serving.engine.observe_answer``), so this module's code is not on
the request path.
"""

from __future__ import annotations

import functools

from prometheus_client import Counter, Gauge, Histogram

BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
REQUEST_LATENCY = Histogram(
    "voicecart_request_latency_seconds", "HTTP request latency from receipt to the end of the response",
    ["route"], buckets=BUCKETS)
RESOLVE_LATENCY = Histogram(
    "voicecart_resolve_latency_seconds", "Resolve latency inside the engine (parse to answer)", buckets=BUCKETS)
RESOLVES = Counter("voicecart_resolves_total", "Resolved requests", ["personalized"])
FALLBACKS = Counter("voicecart_fallbacks_total", "Answers that took a fallback", ["reason"])
MODEL_INFO = Gauge("voicecart_model_info", "The model version being served (value 1)", ["version"],
                   multiprocess_mode="livemax")  # one series per version across worker processes, no pid label
FEEDBACK = Counter("voicecart_feedback_events_total", "Feedback events acknowledged", ["kind", "duplicate"])
FEEDBACK_CONFLICTS = Counter("voicecart_feedback_conflicts_total", "Feedback refused: an event_id already logged "
                             "with a different body (409)")
RELOADS = Counter("voicecart_model_reloads_total", "Hot reloads of the champion", ["outcome"])
BREAKER = Gauge("voicecart_dependency_up", "1 when the dependency's circuit breaker is closed", ["dependency"])
BAD_REQUESTS = Counter("voicecart_bad_requests_total", "Requests refused with a 4xx", ["route", "status"])


def set_model_version(version: str, previous: str | None = None) -> None:
    if previous is not None and previous != version:
        MODEL_INFO.labels(version=previous).set(0)  # 0, not removed: a worker's file keeps what it wrote
    MODEL_INFO.labels(version=version).set(1)


def set_breaker(dependency: str, state: str) -> None:
    BREAKER.labels(dependency=dependency).set(1.0 if state == "closed" else 0.0)


@functools.cache
def request_latency(route: str):  # noqa: ANN201 - the labelled histogram
    """REQUEST_LATENCY of one route, labelled once (``labels()`` per request costs a lock and a dict walk)."""
    return REQUEST_LATENCY.labels(route=route)


@functools.cache
def resolves(personalized: bool):  # noqa: ANN201 - the labelled counter
    return RESOLVES.labels(personalized=str(personalized).lower())
