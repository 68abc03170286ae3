"""C-STAR: shopping trajectories, their tree-Wasserstein geometry, the encoder, pre-training, embeddings and
the customer tasks it is evaluated on. Pure torch + numpy."""

from voicecart.trajectory.embed import (buyer_centroids, embed_events, embed_history, export_onnx, read_embeddings,
                                        write_embeddings)
from voicecart.trajectory.model import CStar, CStarConfig
from voicecart.trajectory.pretrain import TrainConfig, TrainingDiverged, load_encoder, pretrain
from voicecart.trajectory.trajectories import CategoryVocab, Events, as_day, load_events

__all__ = ["buyer_centroids", "CStar", "CStarConfig", "CategoryVocab", "Events", "TrainConfig", "TrainingDiverged", "as_day",
           "embed_events", "embed_history", "export_onnx", "load_encoder", "load_events", "pretrain",
           "read_embeddings", "write_embeddings"]
