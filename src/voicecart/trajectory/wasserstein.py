"""Tree-Wasserstein distance between trajectories seen as distributions over the category tree.

On a tree metric, optimal transport has a closed form (Evans & Matsen; Le et al., NeurIPS 2019):

    TW(mu, nu) = sum over edges e of  w_e * | mu(subtree below e) - nu(subtree below e) |

so a trajectory maps to one vector ``a`` with ``a[v] = w_v * mass(subtree(v))`` for every non-root
node ``v``, and ``TW(mu, nu) = ||a - b||_1`` exactly, in time linear in the trajectory length. That
vector is the *linear Wasserstein embedding* we use as a baseline (compressed by SVD), and the teacher
the coarse encoder is distilled from. Nodes are indexed ``[l1 ids | l2 ids | l3 ids]`` with the
vocabulary ids of :mod:`voicecart.trajectory.trajectories` (special ids carry no mass). An UNK subclass
puts its mass on its aisle node (the deepest known level), which is still a point of the tree.
"""

from __future__ import annotations

import numpy as np
import torch

from voicecart.trajectory.trajectories import N_SPECIAL, CategoryVocab

DEFAULT_EDGE_WEIGHTS = (1.0, 0.5, 0.25)
"""Length of the edge above a department, an aisle, a subclass node: leaves in one aisle are 0.5 apart,
in different departments 3.5 apart."""


def tree_vectors(l1: torch.Tensor, l2: torch.Tensor, l3: torch.Tensor, valid: torch.Tensor,
                 sizes: tuple[int, int, int], edge_weights: tuple[float, float, float] = DEFAULT_EDGE_WEIGHTS
                 ) -> torch.Tensor:
    """[B, T] category ids (+ [B, T] bool ``valid``) -> [B, n1+n2+n3] tree vectors, each event of mass 1/n."""
    B = l1.shape[0]
    n1, n2, n3 = sizes
    mass = valid.float() / valid.float().sum(1, keepdim=True).clamp(min=1.0)  # [B, T]
    out = torch.zeros(B, n1 + n2 + n3, dtype=torch.float32)
    for ids, offset, w in ((l1, 0, edge_weights[0]), (l2, n1, edge_weights[1]), (l3, n1 + n2, edge_weights[2])):
        known = (ids >= N_SPECIAL).float()  # UNK/PAD/MASK: no mass at this level (it stays on the parent)
        out.scatter_add_(1, ids + offset, w * mass * known)
    return out


def tree_wasserstein(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact tree-Wasserstein distance between tree vectors (rows of ``a`` and ``b``)."""
    return (a - b).abs().sum(-1)


def pairwise_tree_wasserstein(a: torch.Tensor) -> torch.Tensor:
    """[B, N] tree vectors -> [B, B] exact tree-Wasserstein distances."""
    return torch.cdist(a, a, p=1)


def leaf_ground_metric(vocab: CategoryVocab, edge_weights: tuple[float, float, float] = DEFAULT_EDGE_WEIGHTS
                       ) -> np.ndarray:
    """[n3, n3] shortest-path distances between known subclasses on the tree (for checking against POT)."""
    p2, p3 = vocab.tree_parents()
    aisle = p3[N_SPECIAL:]
    dept = p2[aisle]
    w1, w2, w3 = edge_weights
    same_aisle = aisle[:, None] == aisle[None, :]
    same_dept = dept[:, None] == dept[None, :]
    d = np.where(same_aisle, 2 * w3, np.where(same_dept, 2 * (w3 + w2), 2 * (w3 + w2 + w1)))
    np.fill_diagonal(d, 0.0)
    return d.astype(np.float64)
