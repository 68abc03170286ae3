"""Personalized item resolution: parse an utterance, find candidates, featurize, rank.

Public API (stable; see docs/ranking.md):

- :func:`parse` — utterance -> :class:`~voicecart.schemas.ParsedUtterance` (never raises)
- :class:`Catalog` — products + stats as of a moment; ``candidates(parsed, k)``
- :func:`candidate_features` — THE feature code (offline and online), ``FEATURE_NAMES``
- :class:`Ranker`, :class:`RankerConfig`, :func:`train_ranker` — the torch model, ONNX export
- :class:`Resolver` — parse -> candidates -> features -> rank -> top-k
- :class:`Purchases`, :class:`History` — purchase history arrays (offline) / one profile (online)
"""

from voicecart.ranking.catalog import Candidates, Catalog
from voicecart.ranking.features import FEATURE_NAMES, N_FEATURES, candidate_features
from voicecart.ranking.history import History, Purchases, to_day
from voicecart.ranking.model import Ranker, RankerConfig
from voicecart.ranking.parse import parse
from voicecart.ranking.resolver import Resolution, Resolver
from voicecart.ranking.train import QueryLists, TrainingSet, train_ranker

__all__ = [
    "FEATURE_NAMES", "N_FEATURES", "Candidates", "Catalog", "History", "Purchases", "QueryLists", "Ranker",
    "RankerConfig", "Resolution", "Resolver", "TrainingSet", "candidate_features", "parse", "to_day",
    "train_ranker",
]
