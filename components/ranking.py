"""Train the personalized ranker on the weeks before the cut-off, from the snapshot."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_ranker(snapshot: Input[Dataset], test_from: str, use_embeddings: bool, epochs: int, hidden: str, lr: float,
                 seed: int, model: Output[Model], metrics: Output[Metrics]):
    """Ranker weights, its catalogue with the product vectors of its cut, and its training summary."""
    from voicecart.ranking.train import train_step

    summary = train_step(snapshot.path, model.path, test_from=test_from, use_embedding=use_embeddings,
                         epochs=epochs, hidden=hidden, lr=lr, seed=seed)
    model.metadata.update(summary)
    for key, value in summary.items():
        if isinstance(value, (int, float)):
            metrics.log_metric(key, value)
