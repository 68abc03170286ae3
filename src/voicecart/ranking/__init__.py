"""Personalized item resolution: parse an utterance, find candidates, featurize, rank.

Public API (see docs/ranking.md):

- :func:`parse` — utterance -> :class:`~voicecart.schemas.ParsedUtterance` (never raises)
- :class:`Catalog` — products, categories, text index; :class:`ProductStats` of a moment; ``candidates``
- :func:`candidate_features` / :func:`feature_matrix` — THE feature code (offline and online), ``FEATURE_NAMES``
- :class:`Ranker`, :class:`RankerConfig` — the torch model, ONNX export
- :func:`train_ranker` — THE training entry point (lists from a feature snapshot, feedback included)
"""

from voicecart.ranking.catalog import Candidates, Catalog, ProductStats, ProductVectors
from voicecart.ranking.features import FEATURE_NAMES, N_FEATURES, CustomerAggregates, History, candidate_features, feature_matrix
from voicecart.ranking.model import Ranker, RankerConfig
from voicecart.ranking.parse import parse
from voicecart.ranking.lists import QueryLists, SnapshotIndex
from voicecart.ranking.train import TrainedRanker, TrainingSet, score_rows, train_ranker

__all__ = [
    "FEATURE_NAMES", "N_FEATURES", "Candidates", "Catalog", "CustomerAggregates", "History", "ProductStats",
    "ProductVectors", "QueryLists", "Ranker", "RankerConfig", "SnapshotIndex", "TrainedRanker", "TrainingSet",
    "candidate_features", "feature_matrix", "parse", "score_rows", "train_ranker",
]
