"""Where torch work runs comes from settings (auto: CUDA when present); tests run on the CPU."""

from __future__ import annotations

import pytest
import torch

from voicecart.config import ConfigError, load_settings
from voicecart.devices import resolve_device


def test_auto_is_cuda_only_where_there_is_one() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device("cuda:1") == torch.device("cuda:1")


def test_devices_come_from_settings_and_a_bad_one_names_its_field(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.ranking.device, settings.trajectory.device, settings.trajectory.amp) == ("auto", "auto", False)
    monkeypatch.setenv("VOICECART_TRAJECTORY__DEVICE", "cuda:0")
    monkeypatch.setenv("VOICECART_RANKING__DEVICE", "cpu")
    settings = load_settings()
    assert (settings.trajectory.device, settings.ranking.device) == ("cuda:0", "cpu")
    monkeypatch.setenv("VOICECART_RANKING__DEVICE", "gpu")
    with pytest.raises(ConfigError, match="ranking.device"):
        load_settings()


def test_embedding_leaves_the_model_where_it_was() -> None:
    import numpy as np

    from voicecart.trajectory import CategoryVocab, CStarConfig
    from voicecart.trajectory.embed import embed_events
    from voicecart.trajectory.model import CStar
    from voicecart.trajectory.trajectories import Events

    events = Events(customer_ids=np.array(["a", "b"], dtype=object), offsets=np.array([0, 2, 3]),
                    day=np.array([1.0, 2.0, 3.0]), basket=np.array([0, 1, 2]),
                    l1=np.array(["x", "x", "y"], dtype=object), l2=np.array(["x1", "x1", "y1"], dtype=object),
                    l3=np.array(["x11", "x12", "y11"], dtype=object))
    window = events.window(10.0, max_events=8)
    vocab = CategoryVocab.from_paths(window.l1, window.l2, window.l3)
    model = CStar(CStarConfig(*vocab.sizes, dim=8, d_model=8, max_events=8))
    out = embed_events(model, window.encode(vocab), 10.0, device="cpu")
    assert out.shape == (2, 8) and np.isfinite(out).all() and model.device.type == "cpu"
