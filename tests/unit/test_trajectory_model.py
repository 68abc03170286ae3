"""The C-STAR encoder: shapes, padding, empty and one-event trajectories, UNK fallback, objectives, ONNX."""

import numpy as np
import pytest
import torch

from voicecart.trajectory.model import (INPUTS, CStar, CStarConfig, consistency_loss, mask_events, structure_loss)
from voicecart.trajectory.trajectories import MASK, UNK

SIZES = (8, 12, 30)


def batch(B=3, T=6, seed=0, lengths=None):
    g = torch.Generator().manual_seed(seed)
    x = {"l1": torch.randint(3, SIZES[0], (B, T), generator=g), "l2": torch.randint(3, SIZES[1], (B, T), generator=g),
         "l3": torch.randint(3, SIZES[2], (B, T), generator=g), "gap": torch.randint(0, 10, (B, T), generator=g),
         "boundary": torch.randint(0, 2, (B, T), generator=g), "recency": torch.randint(0, 10, (B, T), generator=g),
         "pos": torch.arange(T - 1, -1, -1).expand(B, T).clone(), "dow": torch.randint(0, 7, (B, T), generator=g),
         "size": torch.randint(0, 8, (B, T), generator=g)}
    lengths = lengths or [T] * B
    x["valid"] = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return x


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CStar(CStarConfig(*SIZES, dim=16, d_model=32, n_heads=4, max_events=16)).eval()


def test_embedding_shape_and_branches(model):
    assert model(**batch()).shape == (3, 16)
    for coarse, fine in ((True, False), (False, True)):
        m = CStar(CStarConfig(*SIZES, dim=16, d_model=32, coarse=coarse, fine=fine)).eval()
        assert m(**batch()).shape == (3, 16)
    with pytest.raises(ValueError, match="coarse / fine"):
        CStarConfig(*SIZES, coarse=False, fine=False)


def test_padding_does_not_change_the_embedding(model):
    x = batch(B=2, T=4, lengths=[4, 2])
    wide = {k: torch.cat([v, torch.zeros_like(v[:, :3])], dim=1) for k, v in x.items()}
    with torch.no_grad():
        assert torch.allclose(model(**x), model(**wide), atol=1e-5)


def test_empty_and_one_event_trajectories_give_finite_embeddings(model):
    x = batch(B=2, T=3, lengths=[0, 1])
    with torch.no_grad():
        e = model(**x)
    assert torch.isfinite(e).all()
    masked, m = mask_events(x, prob=1.0)
    assert not m.any()  # a one-event trajectory is never masked whole


def test_unknown_subclass_still_uses_its_aisle_and_department(model):
    x = batch(B=2, T=3)
    x["l3"][:, 0] = UNK
    x["l2"][1, 0] = (x["l2"][0, 0] - 3 + 1) % (SIZES[1] - 3) + 3  # other aisle for customer 1
    for k in INPUTS:
        if k not in ("l2",):
            x[k][1] = x[k][0]
    with torch.no_grad():
        e = model(**x)
    assert not torch.allclose(e[0], e[1])


def test_masking_replaces_every_level():
    x = batch(B=4, T=10)
    masked, m = mask_events(x, prob=0.5, generator=torch.Generator().manual_seed(1))
    assert m.any()
    for k in ("l1", "l2", "l3"):
        assert (masked[k][m] == MASK).all() and (masked[k][~m] == x[k][~m]).all()


def test_structure_loss_is_zero_when_distances_are_proportional():
    tree = torch.rand(5, 7)
    emb = torch.rand(5, 3)
    assert structure_loss(emb, tree) > 0
    # an embedding whose Euclidean distances are proportional to the tree L1 distances: 1-D ordered points
    pts = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    tree_1d = torch.cat([pts, torch.zeros(4, 2)], dim=1)
    assert structure_loss(2 * pts, tree_1d).item() == pytest.approx(0.0, abs=1e-8)


def test_consistency_prefers_matching_windows():
    a = torch.randn(8, 16)
    assert consistency_loss(a, a + 0.01 * torch.randn(8, 16), 0.1) < consistency_loss(a, torch.randn(8, 16), 0.1)


def test_onnx_export_matches_torch(model, tmp_path):
    import onnxruntime as ort

    from voicecart.trajectory.embed import export_onnx

    path = export_onnx(model, tmp_path / "cstar.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = batch(B=5, T=9, lengths=[9, 3, 1, 0, 6], seed=3)  # other batch and length than at export
    got = session.run(["embedding"], {k: v.numpy() for k, v in x.items()})[0]
    with torch.no_grad():
        want = model(**x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_transition_graph_encoder_is_a_drop_in_fine_encoder(tmp_path):
    import onnxruntime as ort

    from voicecart.trajectory.embed import export_onnx

    torch.manual_seed(0)
    m = CStar(CStarConfig(*SIZES, dim=16, d_model=32, n_heads=4, fine_encoder="graph")).eval()
    x = batch(B=3, T=5, lengths=[5, 1, 0])
    with torch.no_grad():
        e = m(**x)
        wide = {k: torch.cat([v, torch.zeros_like(v[:, :2])], dim=1) for k, v in x.items()}
        assert torch.allclose(e, m(**wide), atol=1e-5)
    assert e.shape == (3, 16) and torch.isfinite(e).all()
    session = ort.InferenceSession(str(export_onnx(m, tmp_path / "g.onnx")), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["embedding"], {k: v.numpy() for k, v in x.items()})[0], e.numpy(),
                               atol=1e-4)
    with pytest.raises(ValueError, match="fine_encoder"):
        CStarConfig(*SIZES, fine_encoder="lstm")


def test_rhythm_is_three_distributions_over_baskets():
    from voicecart.trajectory.model import RHYTHM_GROUPS, rhythm

    # one customer, 3 baskets: Mon (2 events), Mon, Wed; gaps between baskets 7 and 2 days
    x = {"boundary": torch.tensor([[1, 0, 1, 1, 0]]), "valid": torch.tensor([[True, True, True, True, False]]),
         "dow": torch.tensor([[0, 0, 0, 2, 0]]), "size": torch.tensor([[1, 1, 0, 0, 0]]),
         "gap": torch.tensor([[9, 0, 4, 3, 0]]), "pos": torch.tensor([[3, 2, 1, 0, 0]])}
    r = rhythm(x)[0]
    dow, size, gap = r[:7], r[7:7 + RHYTHM_GROUPS[1]], r[7 + RHYTHM_GROUPS[1]:]
    assert torch.allclose(dow[[0, 2]], torch.tensor([2 / 3, 1 / 3])) and abs(float(dow.sum()) - 1) < 1e-6
    assert torch.allclose(size[[0, 1]], torch.tensor([2 / 3, 1 / 3]))
    assert torch.allclose(gap[[3, 4]], torch.tensor([0.5, 0.5])) and float(gap[9]) == 0  # the first event has no gap


def test_next_basket_and_rhythm_losses_are_finite_and_skip_customers_without_a_target(model):
    from voicecart.trajectory.model import next_basket_loss, rhythm, rhythm_loss

    x = batch()
    emb = model.encode(x)[0]
    none = torch.zeros(3, SIZES[2])
    assert float(next_basket_loss(model, emb, none)) == 0.0
    target = none.clone()
    target[0, 5] = 1.0
    only_first = next_basket_loss(model, emb, target)
    assert torch.isfinite(only_first) and float(only_first) > 0
    assert torch.allclose(only_first, next_basket_loss(model, emb[:1], target[:1]))
    assert torch.isfinite(rhythm_loss(model, emb, rhythm(x)))

