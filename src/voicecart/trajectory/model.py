"""C-STAR, the shopping-trajectory encoder, in one file: config, modules in data-flow order, losses.

A customer's trajectory (category events, see ``trajectories.py``) goes through two encoders:

* **coarse** — *inter-trajectory distribution similarity*: the trajectory as a distribution over the
  category tree. Its first layer is exactly a linear map of the tree-Wasserstein vector (see
  ``wasserstein.py``), computed as a weighted bag of per-level category embeddings; an MLP follows.
  Pre-training distils the exact tree-Wasserstein distances into embedding distances.
* **fine** — *intra-trajectory semantic correlation*: a transformer over the event sequence, each event
  the sum of its department, aisle and subclass embeddings plus time-gap, basket-boundary, weekday,
  basket-size, recency and position embeddings, read out through a [CLS] token. Pre-training masks
  categories and predicts them.

Their outputs are concatenated and projected to the customer embedding (``dim``, default 64). From that
embedding, pre-training also predicts the subclasses of the basket that follows the window (next basket)
and the other window's rhythm (weekday, basket-size and gap distributions), and asks two windows of the
same customer to land close together (InfoNCE).

Shapes: B customers, T events, D = d_model, E = dim; N = n1 + n2 + n3 tree nodes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from voicecart.trajectory.trajectories import MASK, N_SIZE_BUCKETS, N_SPECIAL, N_TIME_BUCKETS, PAD
from voicecart.trajectory.wasserstein import DEFAULT_EDGE_WEIGHTS

RHYTHM_GROUPS = (7, N_SIZE_BUCKETS, N_TIME_BUCKETS)
"""The rhythm of a window, three distributions over its baskets: weekday, size bucket, gap bucket."""

INPUTS = ("l1", "l2", "l3", "gap", "boundary", "recency", "pos", "dow", "size", "valid")
"""Tensor names the encoder reads (and the ONNX graph's inputs), each [B, T]."""


@dataclass
class CStarConfig:
    n_l1: int  # vocabulary sizes per category level, specials included
    n_l2: int
    n_l3: int
    dim: int = 64  # customer embedding size (settings.trajectory.embedding_dim)
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128
    dropout: float = 0.1
    max_events: int = 128
    coarse: bool = True  # ablations: coarse only / fine only
    fine: bool = True
    fine_encoder: str = "transformer"  # or "graph": message passing on the trajectory's transition graph
    edge_weights: tuple[float, float, float] = DEFAULT_EDGE_WEIGHTS
    # pre-training
    mask_prob: float = 0.15
    crop: float = 0.5  # the second window keeps >= this share of the trajectory
    temperature: float = 0.1
    loss_weights: dict[str, float] = field(default_factory=lambda: {"structure": 10.0, "masked": 1.0,
                                                                     "consistency": 1.0, "next": 1.0,
                                                                     "rhythm": 1.0})

    def __post_init__(self) -> None:
        if not (self.coarse or self.fine):
            raise ValueError("CStarConfig: at least one of coarse / fine must be on")
        if self.fine_encoder not in ("transformer", "graph"):
            raise ValueError(f"CStarConfig.fine_encoder must be 'transformer' or 'graph', got {self.fine_encoder!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"CStarConfig.d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        self.edge_weights = tuple(self.edge_weights)  # type: ignore[assignment]

    def to_dict(self) -> dict:
        return asdict(self)


class CategoryEmbedding(nn.Module):
    """Sum of the department, aisle and subclass embeddings: an UNK subclass still carries its parents."""

    def __init__(self, cfg: CStarConfig) -> None:
        super().__init__()
        self.l1 = nn.Embedding(cfg.n_l1, cfg.d_model, padding_idx=PAD)
        self.l2 = nn.Embedding(cfg.n_l2, cfg.d_model, padding_idx=PAD)
        self.l3 = nn.Embedding(cfg.n_l3, cfg.d_model, padding_idx=PAD)

    def forward(self, l1: torch.Tensor, l2: torch.Tensor, l3: torch.Tensor) -> torch.Tensor:
        return self.l1(l1) + self.l2(l2) + self.l3(l3)  # [B, T, D]


class EventEmbedding(nn.Module):
    """One event of the trajectory: what (category path), when (days since the previous event, days before
    the cut-off, weekday), how it sits in the visit (basket start, basket size) and its index from the end."""

    def __init__(self, cfg: CStarConfig) -> None:
        super().__init__()
        self.category = CategoryEmbedding(cfg)
        self.gap = nn.Embedding(N_TIME_BUCKETS, cfg.d_model)  # days since the previous event
        self.recency = nn.Embedding(N_TIME_BUCKETS, cfg.d_model)  # days before the cut-off
        self.boundary = nn.Embedding(2, cfg.d_model)  # 1 = first event of a basket
        self.dow = nn.Embedding(7, cfg.d_model)  # weekday of the basket
        self.size = nn.Embedding(N_SIZE_BUCKETS, cfg.d_model)  # basket size bucket
        self.pos = nn.Embedding(cfg.max_events, cfg.d_model)  # index from the end
        self.max_pos = cfg.max_events - 1

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return (self.category(x["l1"], x["l2"], x["l3"]) + self.gap(x["gap"]) + self.recency(x["recency"])
                + self.boundary(x["boundary"]) + self.dow(x["dow"]) + self.size(x["size"])
                + self.pos(x["pos"].clamp(max=self.max_pos)))  # [B, T, D]


class CoarseEncoder(nn.Module):
    """Distribution over the category tree -> [B, D].

    ``bag`` = sum_events mass * (w1 C1[l1] + w2 C2[l2] + w3 C3[l3]) equals ``W @ tree_vector`` with W the
    stacked tables, so this branch sees exactly what the tree-Wasserstein distance sees.
    """

    def __init__(self, cfg: CStarConfig) -> None:
        super().__init__()
        self.edge_weights = cfg.edge_weights
        self.tables = nn.ModuleList(nn.Embedding(n, cfg.d_model) for n in (cfg.n_l1, cfg.n_l2, cfg.n_l3))
        self.mlp = nn.Sequential(nn.LayerNorm(cfg.d_model), nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(),
                                 nn.Linear(cfg.d_ff, cfg.d_model))

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        valid = x["valid"].float()  # [B, T]
        mass = valid / valid.sum(1, keepdim=True).clamp(min=1.0)  # [B, T]
        bag = 0.0
        for table, name, w in zip(self.tables, ("l1", "l2", "l3"), self.edge_weights):
            known = (x[name] >= N_SPECIAL).float() * mass  # specials carry no mass
            bag = bag + w * (known.unsqueeze(-1) * table(x[name])).sum(1)  # [B, D]
        return bag + self.mlp(bag)  # [B, D]


class SelfAttention(nn.Module):
    def __init__(self, cfg: CStarConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        B, T, D = h.shape
        q, k, v = self.qkv(h).split(D, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))  # [B, H, T, D/H]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D // self.n_heads)  # [B, H, T, T]
        att = att.masked_fill(~keep[:, None, None, :], -1e9)  # padded events are never attended to
        att = self.drop(att.softmax(-1))
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, D))  # [B, T, D]


class Block(nn.Module):
    def __init__(self, cfg: CStarConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model),
                                 nn.Dropout(cfg.dropout))

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.ln1(h), keep)
        return h + self.mlp(self.ln2(h))


class FineEncoder(nn.Module):
    """Event sequence -> ([B, D] trajectory vector, [B, T, D] event states)."""

    def __init__(self, cfg: CStarConfig) -> None:
        super().__init__()
        self.event = EventEmbedding(cfg)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)

    def forward(self, x: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        B = x["l1"].shape[0]
        h = self.event(x)  # [B, T, D]
        h = torch.cat([self.cls.expand(B, 1, -1), h], dim=1)  # [B, 1+T, D]
        keep = torch.cat([torch.ones(B, 1, dtype=torch.bool, device=h.device), x["valid"]], dim=1)  # [B, 1+T]
        h = self.drop(h)
        for block in self.blocks:
            h = block(h, keep)
        h = self.ln_f(h)
        return h[:, 0], h[:, 1:]  # [B, D], [B, T, D]


class GraphEncoder(nn.Module):
    """The alternative fine encoder: message passing on the trajectory's category-transition graph.

    Nodes are the events (with the same input embeddings as the transformer); an edge joins two events
    in the same basket, in consecutive baskets (the transitions), or of the same subclass (so repeated
    categories act as one node). Two rounds of degree-normalised mean aggregation, then mean pooling.
    Same outputs as :class:`FineEncoder`: ([B, D], [B, T, D]).
    """

    def __init__(self, cfg: CStarConfig) -> None:
        super().__init__()
        self.event = EventEmbedding(cfg)
        self.layers = nn.ModuleList(nn.Sequential(nn.LayerNorm(2 * cfg.d_model), nn.Linear(2 * cfg.d_model, cfg.d_ff),
                                                  nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))
                                    for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)

    def forward(self, x: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        valid = x["valid"]
        h = self.event(x)  # [B, T, D]
        basket = torch.cumsum(x["boundary"], dim=1)  # [B, T] basket number inside the window
        step = basket[:, :, None] - basket[:, None, :]  # [B, T, T]
        same_l3 = (x["l3"][:, :, None] == x["l3"][:, None, :]) & (x["l3"][:, :, None] > MASK)
        adj = ((step.abs() <= 1) | same_l3) & valid[:, :, None] & valid[:, None, :]  # [B, T, T]
        adj = adj.float() / adj.float().sum(-1, keepdim=True).clamp(min=1.0)
        for layer in self.layers:
            h = h + layer(torch.cat([h, adj @ h], dim=-1))  # [B, T, D]
        h = self.ln_f(h)
        m = valid.float().unsqueeze(-1)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0), h  # [B, D], [B, T, D]


class CStar(nn.Module):
    """Trajectory -> customer embedding [B, E], coarse and fine branches fused by one projection."""

    def __init__(self, cfg: CStarConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.coarse = CoarseEncoder(cfg) if cfg.coarse else None
        fine = GraphEncoder if cfg.fine_encoder == "graph" else FineEncoder
        self.fine = fine(cfg) if cfg.fine else None
        self.fuse = nn.Linear(cfg.d_model * (int(cfg.coarse) + int(cfg.fine)), cfg.dim)
        # pre-training heads: masked subclass and aisle prediction from the fine branch's event states
        self.predict_l3 = nn.Linear(cfg.d_model, cfg.n_l3) if cfg.fine else None
        self.predict_l2 = nn.Linear(cfg.d_model, cfg.n_l2) if cfg.fine else None
        # ... and from the customer embedding: the next basket's subclasses, and the other window's rhythm
        self.predict_next = nn.Linear(cfg.dim, cfg.n_l3)
        self.predict_rhythm = nn.Linear(cfg.dim, sum(RHYTHM_GROUPS))

    @property
    def device(self) -> torch.device:
        return self.fuse.weight.device

    def encode(self, x: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        parts, states = [], None
        if self.coarse is not None:
            parts.append(self.coarse(x))  # [B, D]
        if self.fine is not None:
            z, states = self.fine(x)  # [B, D], [B, T, D]
            parts.append(z)
        return self.fuse(torch.cat(parts, dim=-1)), states  # [B, E], [B, T, D] | None

    def forward(self, l1: torch.Tensor, l2: torch.Tensor, l3: torch.Tensor, gap: torch.Tensor,
                boundary: torch.Tensor, recency: torch.Tensor, pos: torch.Tensor, dow: torch.Tensor,
                size: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The served signature (and the ONNX graph): [B, T] tensors -> [B, E] embedding."""
        x = dict(l1=l1, l2=l2, l3=l3, gap=gap, boundary=boundary, recency=recency, pos=pos, dow=dow, size=size,
                 valid=valid)
        return self.encode(x)[0]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ----------------------------------------------------------------------------------------------------
# Pre-training objectives
# ----------------------------------------------------------------------------------------------------

def mask_events(x: dict[str, torch.Tensor], prob: float, generator: torch.Generator | None = None
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Replace every level of a random ``prob`` share of events by MASK; returns (masked x, [B, T] mask).
    Trajectories of one event are never masked whole (the model would see nothing)."""
    r = torch.rand(x["valid"].shape, generator=generator).to(x["valid"].device)  # the generator is the CPU's
    masked = (r < prob) & x["valid"] & (x["valid"].sum(1, keepdim=True) > 1)
    out = dict(x)
    for name in ("l1", "l2", "l3"):
        out[name] = x[name].masked_fill(masked, MASK)
    return out, masked


def structure_loss(embedding: torch.Tensor, tree: torch.Tensor) -> torch.Tensor:
    """Distance distillation: pairwise embedding distances proportional to exact tree-Wasserstein ones.

    Both distance matrices are scaled by their mean over the batch, so only relative distances matter.
    """
    target = torch.cdist(tree, tree, p=1)  # [B, B]
    dist = torch.cdist(embedding, embedding, p=2)  # [B, B]
    off = ~torch.eye(len(tree), dtype=torch.bool, device=tree.device)
    target, dist = target[off], dist[off]
    return F.mse_loss(dist / dist.mean().clamp(min=1e-6), target / target.mean().clamp(min=1e-6))


def masked_category_loss(model: CStar, states: torch.Tensor, x: dict[str, torch.Tensor],
                         masked: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the true subclass (and aisle) at masked events; 0 when nothing was masked."""
    if model.predict_l3 is None or not bool(masked.any()):
        return states.sum() * 0.0 if states is not None else torch.zeros(())
    h = states[masked]  # [M, D]
    return F.cross_entropy(model.predict_l3(h), x["l3"][masked]) + 0.5 * F.cross_entropy(
        model.predict_l2(h), x["l2"][masked])


def consistency_loss(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE: the two windows of one customer are each other's positives, other customers negatives."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature  # [B, B]
    labels = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def next_basket_loss(model: CStar, embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the next basket's subclasses (``target`` [B, n_l3], rows summing to 1, or all 0 for
    a customer with no next basket) predicted from the embedding of the trajectory before it."""
    has = target.sum(1) > 0
    if not bool(has.any()):
        return embedding.sum() * 0.0
    logits = model.predict_next(embedding[has])
    logits[:, :N_SPECIAL] = -1e9
    return -(target[has] * F.log_softmax(logits, dim=1)).sum(1).mean()


def rhythm(x: dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, 7 + sizes + gaps] the window's rhythm: the shares of its baskets by weekday, by size bucket and by
    days since the previous basket (a one-basket window has no gap: that part stays 0)."""
    starts = (x["boundary"].bool() & x["valid"]).float()  # [B, T] one per basket
    parts = []
    for name, n in zip(("dow", "size", "gap"), RHYTHM_GROUPS):
        w = starts if name != "gap" else starts * (x["pos"] < x["valid"].sum(1, keepdim=True) - 1).float()
        hist = torch.zeros(len(w), n, device=w.device).scatter_add_(1, x[name].clamp(max=n - 1), w)  # [B, n]
        parts.append(hist / hist.sum(1, keepdim=True).clamp(min=1.0))
    return torch.cat(parts, dim=1)


def rhythm_loss(model: CStar, embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each rhythm distribution (weekday, basket size, gap) predicted from the embedding."""
    logits = model.predict_rhythm(embedding)
    loss, at = embedding.sum() * 0.0, 0
    for n in RHYTHM_GROUPS:
        t = target[:, at:at + n]
        loss = loss - (t * F.log_softmax(logits[:, at:at + n], dim=1)).sum(1).mean()
        at += n
    return loss
