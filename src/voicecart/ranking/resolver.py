"""The resolution engine as a library: parse -> candidates -> features -> rank -> top-k.

The serving layer wraps this (KServe, the online profile read, deadlines); it can swap the scorer
for ONNX Runtime or Triton by passing ``scorer``. Nothing here raises on bad input: the result
says what happened (intent unknown, no candidates, not personalized).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from voicecart.ranking.catalog import Catalog
from voicecart.ranking.features import candidate_features
from voicecart.ranking.parse import parse
from voicecart.schemas import CustomerProfile, Intent, ParsedUtterance, ProductRef

Scorer = Callable[[np.ndarray], np.ndarray]
"""features [n, F] float32 -> scores [n]."""


@dataclass
class Resolution:
    parsed: ParsedUtterance
    products: list[ProductRef] = field(default_factory=list)
    """Best first; ``products[0]`` is the answer."""
    personalized: bool = False
    fallbacks: list[str] = field(default_factory=list)
    n_candidates: int = 0

    @property
    def answer(self) -> ProductRef | None:
        return self.products[0] if self.products else None


class Resolver:
    """Compose the resolution steps. ``ranker`` is a :class:`~voicecart.ranking.model.Ranker` or None."""

    def __init__(self, catalog: Catalog, ranker=None, *, top_k: int = 5, max_candidates: int = 100,  # noqa: ANN001
                 scorer: Scorer | None = None, use_embedding: bool | None = None) -> None:
        self.catalog = catalog
        self.ranker = ranker
        self.top_k = top_k
        self.max_candidates = max_candidates
        self.scorer: Scorer | None = scorer or (ranker.score if ranker is not None else None)
        cfg_emb = bool(getattr(getattr(ranker, "config", None), "use_embedding", False))
        self.use_embedding = cfg_emb if use_embedding is None else use_embedding

    def resolve(self, utterance: str | bytes | ParsedUtterance, profile: CustomerProfile | None,
                now: float | None = None) -> Resolution:
        parsed = utterance if isinstance(utterance, ParsedUtterance) else parse(utterance)
        if parsed.intent is Intent.unknown or (parsed.mention is None and parsed.category is None):
            return Resolution(parsed, fallbacks=["not_understood"] if parsed.intent is Intent.unknown else [])
        try:
            candidates = self.catalog.candidates(parsed, self.max_candidates)
        except Exception:  # noqa: BLE001 - never let the request path raise
            return Resolution(parsed, fallbacks=["retrieval_failed"])
        if len(candidates) == 0:
            return Resolution(parsed, fallbacks=["no_candidates"])
        fallbacks: list[str] = []
        personal = profile is not None and profile.has_history
        if profile is None:
            fallbacks.append("no_profile")
        scores = None
        if self.scorer is not None:
            try:
                now_s = time.time() if now is None else now
                feats = candidate_features(profile, candidates, self.catalog, now_s, embedding=self.use_embedding)
                scores = np.asarray(self.scorer(feats), dtype=np.float64)
            except Exception:  # noqa: BLE001
                fallbacks.append("ranker_failed")
        if scores is None:
            personal = False
            if "ranker_failed" not in fallbacks:
                fallbacks.append("no_ranker")
            scores = self.catalog.popularity[candidates.product].astype(np.float64) + candidates.text_score * 1e9
        k = min(self.top_k, len(candidates))
        top = np.argsort(-scores, kind="stable")[:k]
        refs = [ProductRef(id=str(self.catalog.product_ids[candidates.product[i]]),
                           title=self.catalog.titles[candidates.product[i]], score=float(scores[i])) for i in top]
        return Resolution(parsed, refs, personalized=personal, fallbacks=fallbacks, n_candidates=len(candidates))
