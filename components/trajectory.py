"""Pre-train the C-STAR trajectory encoder and embed every customer at the moments the snapshot needs."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def pretrain_cstar(dataset: Input[Dataset], test_from: str, window_end: str, epochs: int, embedding_dim: int,
                   seed: int, encoder: Output[Model], embeddings: Output[Dataset], loss_curves: Output[HTML]):
    """Encoder checkpoint, every customer's embedding at each training cut and the window end, loss curves."""
    from voicecart.features.snapshot import training_cuts
    from voicecart.schemas.times import parse_moment
    from voicecart.trajectory.window import pretrain_window

    moments = [*training_cuts(parse_moment(test_from)), parse_moment(window_end)]
    summary = pretrain_window(dataset.path, encoder.path, embeddings.path, loss_curves.path, as_of=test_from,
                              embed_at=moments, epochs=epochs, embedding_dim=embedding_dim, seed=seed)
    encoder.metadata.update(summary)
