"""The torch ranker: learns a planted preference, round-trips through save/load and ONNX."""

import numpy as np
import pytest
import torch

from voicecart.ranking import Ranker, RankerConfig, TrainingSet
from voicecart.ranking.train import fit
from voicecart.ranking.train import list_loss, score_rows


def planted(n_lists=400, n=8, f=6, seed=0):
    """Lists where the chosen row is the one maximising 2*x0 - x1 (x2.. are noise)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_lists * n, f)).astype(np.float32)
    util = 2 * x[:, 0] - x[:, 1]
    label = np.zeros(n_lists * n, dtype=np.float32)
    best = util.reshape(n_lists, n).argmax(1) + np.arange(n_lists) * n
    label[best] = 1
    offsets = np.arange(0, n_lists * n + 1, n, dtype=np.int64)
    return TrainingSet(x, label, offsets, np.ones(n_lists, dtype=np.float32))


def config(f=6, **kw):
    return RankerConfig(n_features=f, feature_names=[f"f{i}" for i in range(f)], epochs=8, batch_lists=64,
                        lr=1e-2, **kw)


def test_learns_a_planted_preference():
    train, test = planted(seed=0), planted(seed=1)
    model = fit(train, config(), log=lambda *_: None)
    scores = score_rows(model, test.features, test.offsets).reshape(-1, 8)
    hit = (scores.argmax(1) == test.label.reshape(-1, 8).argmax(1)).mean()
    assert hit > 0.8  # random is 1/8


def test_dropped_features_are_ignored():
    model = Ranker(config(drop_features=["f0"]))
    x = torch.randn(2, 5, 6)
    y = x.clone()
    y[..., 0] += 100.0
    torch.testing.assert_close(model(x), model(y))


def test_negative_labels_push_scores_down():
    scores = torch.tensor([[0.0, 0.0, 0.0]], requires_grad=True)
    labels = torch.tensor([[0.0, -1.0, 0.0]])
    loss = list_loss(scores, labels, torch.ones(1, 3, dtype=torch.bool), torch.ones(1))
    loss.backward()
    assert scores.grad[0, 1] > 0  # gradient descent lowers the removed answer


def test_save_load_round_trip(tmp_path):
    model = fit(planted(n_lists=50), config(), log=lambda *_: None)
    model.save(tmp_path / "m")
    again = Ranker.load(tmp_path / "m")
    x = np.random.default_rng(3).normal(size=(9, 6)).astype(np.float32)
    np.testing.assert_array_equal(model.score(x), again.score(x))
    with pytest.raises(FileNotFoundError):
        Ranker.load(tmp_path / "missing")


@pytest.mark.parametrize("n_candidates", [1, 7, 100])
def test_onnx_matches_torch(tmp_path, n_candidates):
    import onnxruntime as ort

    model = fit(planted(n_lists=50), config(), log=lambda *_: None)
    path = model.export_onnx(tmp_path / "ranker.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(n_candidates).normal(size=(3, n_candidates, 6)).astype(np.float32) * 3
    got = session.run(["scores"], {"features": x})[0]
    want = model(torch.from_numpy(x)).detach().numpy()
    assert got.shape == (3, n_candidates)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_prior_feature_adds_its_log_and_exports(tmp_path):
    import onnxruntime as ort

    model = Ranker(config(prior_feature="f2"))
    model.eval()
    x = np.abs(np.random.default_rng(5).normal(size=(2, 6, 6)).astype(np.float32))
    plain = Ranker(config())
    plain.load_state_dict({k: v for k, v in model.state_dict().items()})
    plain.eval()
    want = plain(torch.from_numpy(x)).detach().numpy() + np.log(x[..., 2] + 1e-4)
    np.testing.assert_allclose(model(torch.from_numpy(x)).detach().numpy(), want, atol=1e-5)
    session = ort.InferenceSession(str(model.export_onnx(tmp_path / "p.onnx")), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["scores"], {"features": x})[0], want, atol=1e-5)
