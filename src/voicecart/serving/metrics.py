"""Prometheus metrics of the resolve path (served at /metrics by the KServe ModelServer)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RESOLVE_LATENCY = Histogram(
    "voicecart_resolve_latency_seconds", "End-to-end resolve latency inside the engine",
    buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0))
RESOLVES = Counter("voicecart_resolves_total", "Resolved requests", ["personalized"])
FALLBACKS = Counter("voicecart_fallbacks_total", "Answers that took a fallback", ["reason"])
MODEL_INFO = Gauge("voicecart_model_info", "The model version being served (value 1)", ["version"])
FEEDBACK = Counter("voicecart_feedback_events_total", "Feedback events received", ["kind", "duplicate"])
RELOADS = Counter("voicecart_model_reloads_total", "Hot reloads of the champion", ["outcome"])


def observe(latency_s: float, personalized: bool, fallbacks: list[str]) -> None:
    RESOLVE_LATENCY.observe(latency_s)
    RESOLVES.labels(personalized=str(personalized).lower()).inc()
    for reason in fallbacks:
        FALLBACKS.labels(reason=reason).inc()


def set_model_version(version: str, previous: str | None = None) -> None:
    if previous is not None and previous != version:
        MODEL_INFO.remove(previous)
    MODEL_INFO.labels(version=version).set(1)
