"""The personalized ranker: a small MLP scoring each candidate from its feature vector.

Shapes: features [B, N, F] -> standardised [B, N, F] -> MLP -> scores [B, N]. The feature
mean/std are buffers, so the exported ONNX graph takes raw features.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from voicecart.ranking.features import FEATURE_NAMES


@dataclass
class RankerConfig:
    n_features: int = len(FEATURE_NAMES)
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.0
    feature_names: list[str] = field(default_factory=lambda: list(FEATURE_NAMES))
    # training
    epochs: int = 6
    batch_lists: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-5
    seed: int = 0
    use_embedding: bool = False
    """Score the C-STAR embedding feature (else it is zeroed, as without embeddings)."""
    drop_features: list[str] = field(default_factory=list)
    """Features the model ignores (zeroed after standardisation): ablations without changing F."""
    prior_feature: str | None = None
    """When set, score = log(feature + 1e-4) + MLP: the MLP learns a correction to that prior."""
    device: str = "auto"
    """Where training runs: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:1``."""
    mixed_precision: bool = False
    """bfloat16 autocast on CUDA (ignored on CPU)."""


class Ranker(nn.Module):
    def __init__(self, config: RankerConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(config.n_features))
        self.register_buffer("std", torch.ones(config.n_features))
        keep = [0.0 if name in set(config.drop_features) else 1.0 for name in config.feature_names]
        self.register_buffer("keep", torch.tensor(keep[: config.n_features] + [1.0] * (config.n_features - len(keep))))
        layers: list[nn.Module] = []
        width = config.n_features
        for h in config.hidden:
            layers += [nn.Linear(width, h), nn.GELU()]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        prior = config.feature_names.index(config.prior_feature) if config.prior_feature else -1
        self.prior_index = prior

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = (features - self.mean) / self.std * self.keep  # [B, N, F]
        scores = self.mlp(x).squeeze(-1)  # [B, N]
        if self.prior_index >= 0:
            scores = scores + torch.log(features[..., self.prior_index].clamp(min=0.0) + 1e-4)
        return scores

    def fit_scaler(self, features: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(features.mean(0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(features.std(0), 1e-3), dtype=torch.float32))

    @torch.no_grad()
    def score(self, features: np.ndarray) -> np.ndarray:
        """Scores [n] of one request's candidates [n, F] (numpy in, numpy out)."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float32)
        return self(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))[None])[0].numpy()

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), directory / "ranker.pt")
        cfg = asdict(self.config)
        cfg["hidden"] = list(cfg["hidden"])
        (directory / "ranker.json").write_text(json.dumps(cfg, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Ranker":
        directory = Path(directory)
        cfg_path = directory / "ranker.json"
        if not cfg_path.exists():
            raise FileNotFoundError(f"no ranker.json in {directory}")
        cfg = json.loads(cfg_path.read_text())
        cfg["hidden"] = tuple(cfg["hidden"])
        model = cls(RankerConfig(**cfg))
        model.load_state_dict(torch.load(directory / "ranker.pt", map_location="cpu", weights_only=True))
        model.eval()
        return model

    def export_onnx(self, path: str | Path, opset: int = 17) -> Path:
        """ONNX graph with input ``features`` [B, N, F] and output ``scores`` [B, N] (dynamic B, N)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.eval()
        example = torch.zeros(1, 8, self.config.n_features)
        torch.onnx.export(self, (example,), str(path), input_names=["features"], output_names=["scores"],
                          dynamic_axes={"features": {0: "batch", 1: "candidates"}, "scores": {0: "batch", 1: "candidates"}},
                          opset_version=opset, dynamo=False)
        return path
