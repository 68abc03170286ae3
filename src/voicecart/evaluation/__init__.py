"""Offline evaluation: ranking metrics with bootstrap CIs and the resolution benchmark."""

from voicecart.evaluation.metrics import METRICS, MetricCI, bootstrap, per_query, summarize, truth_ranks

__all__ = ["METRICS", "MetricCI", "bootstrap", "per_query", "summarize", "truth_ranks"]
