"""Tree-Wasserstein: exact (equal to a general OT solver on the tree metric), and the coarse encoder reads it."""

import numpy as np
import ot
import pytest
import torch

from voicecart.trajectory.model import CoarseEncoder, CStarConfig
from voicecart.trajectory.trajectories import N_SPECIAL, UNK, CategoryVocab
from voicecart.trajectory.wasserstein import leaf_ground_metric, pairwise_tree_wasserstein, tree_vectors


@pytest.fixture
def vocab():
    paths = [(f"{d}", f"{d}{a}", f"{d}{a}{s}") for d in range(3) for a in range(3) for s in range(4)]
    return CategoryVocab.from_paths(*map(np.array, zip(*paths)))


def leaf_batch(vocab, leaves):
    p2, p3 = vocab.tree_parents()
    l3 = torch.as_tensor(leaves) + N_SPECIAL
    l2 = torch.from_numpy(p3)[l3]
    l1 = torch.from_numpy(p2)[l2]
    return l1, l2, l3


@pytest.mark.parametrize("seed", range(5))
def test_tree_wasserstein_equals_exact_optimal_transport(vocab, seed):
    rng = np.random.default_rng(seed)
    n3 = vocab.sizes[2] - N_SPECIAL
    a, b = rng.integers(0, n3, 7), rng.integers(0, n3, 4)
    T = 7
    leaves = torch.tensor([list(a), list(b) + [0] * (T - 4)])
    valid = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    vec = tree_vectors(*leaf_batch(vocab, leaves), valid, vocab.sizes)
    tw = pairwise_tree_wasserstein(vec)[0, 1].item()
    mu = np.bincount(a, minlength=n3) / len(a)
    nu = np.bincount(b, minlength=n3) / len(b)
    exact = ot.emd2(mu, nu, leaf_ground_metric(vocab))
    assert tw == pytest.approx(exact, rel=1e-5, abs=1e-6)


def test_unknown_subclass_puts_its_mass_on_the_aisle(vocab):
    l1, l2, l3 = leaf_batch(vocab, torch.tensor([[0], [1]]))  # two subclasses of one aisle
    unk = l3.clone()
    unk[1] = UNK
    vec = tree_vectors(l1, l2, unk, torch.ones(2, 1, dtype=torch.bool), vocab.sizes)
    # leaf vs its own parent: only the leaf edge (0.25) differs
    assert pairwise_tree_wasserstein(vec)[0, 1].item() == pytest.approx(0.25)


def test_coarse_encoder_first_layer_is_a_linear_map_of_the_tree_vector(vocab):
    cfg = CStarConfig(*vocab.sizes)
    enc = CoarseEncoder(cfg)
    l1, l2, l3 = leaf_batch(vocab, torch.tensor([[0, 5, 5, 17], [3, 3, 0, 0]]))
    valid = torch.tensor([[True] * 4, [True, True, False, False]])
    x = dict(l1=l1, l2=l2, l3=l3, valid=valid)
    W = torch.cat([t.weight for t in enc.tables], dim=0)  # [N, D]
    vec = tree_vectors(l1, l2, l3, valid, vocab.sizes, cfg.edge_weights)  # [B, N]
    expected_bag = vec @ W
    with torch.no_grad():
        got = enc(x) - enc.mlp(expected_bag)
    assert torch.allclose(got, expected_bag, atol=1e-5)
