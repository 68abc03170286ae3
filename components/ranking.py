"""Train the personalized ranker on the window before the cut-off."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_ranker(dataset: Input[Dataset], embeddings: Input[Dataset], test_from: str, use_embeddings: bool,
                 epochs: int, hidden: str, lr: float, seed: int, model: Output[Model], metrics: Output[Metrics]):
    """Ranker weights (Ranker.save layout) and its training summary."""
    from voicecart.registry.update import train_challenger

    summary = train_challenger(dataset.path, model.path, test_from=test_from,
                               embeddings_path=embeddings.path if use_embeddings else None,
                               epochs=epochs, hidden=hidden, lr=lr, seed=seed)
    model.metadata.update(summary)
    for key, value in summary.items():
        if isinstance(value, (int, float)):
            metrics.log_metric(key, value)
